"""The learning rules as pure functions, with properties checked by hypothesis."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hebbian_memory.config import PlasticitySettings, load_settings
from hebbian_memory.learning import plasticity
from hebbian_memory.learning.plasticity import EPISODIC, SEMANTIC, WORKING

RULES: PlasticitySettings = load_settings(env={}).plasticity
DAY = timedelta(hours=RULES.cycle_hours)

weights = st.floats(min_value=0.0, max_value=1.0)
tiers = st.sampled_from([WORKING, EPISODIC, SEMANTIC])
durations = st.floats(min_value=0.0, max_value=3650.0).map(lambda d: timedelta(days=d))


def test_each_co_access_adds_the_increment_and_forty_saturate() -> None:
    assert plasticity.strengthen(0.0, RULES) == pytest.approx(0.025)
    assert plasticity.strengthen(0.0, RULES, times=39) < 1.0
    assert plasticity.strengthen(0.0, RULES, times=40) == pytest.approx(1.0)
    assert plasticity.strengthen(0.99, RULES) == 1.0


def test_idle_decay_is_per_cycle_and_tier() -> None:
    assert plasticity.decayed(0.5, WORKING, DAY, RULES) == pytest.approx(0.45)
    assert plasticity.decayed(0.5, EPISODIC, DAY, RULES) == pytest.approx(0.485)
    assert plasticity.decayed(0.5, SEMANTIC, DAY, RULES) == pytest.approx(0.4975)
    # A link at 0.1 reaches the floor after about 22 idle working cycles.
    assert (
        plasticity.decayed(0.1, WORKING, 21 * DAY, RULES)
        > RULES.floor
        > plasticity.decayed(0.1, WORKING, 22 * DAY, RULES)
    )


def test_a_week_asleep_decays_as_much_as_seven_daily_passes() -> None:
    weight = 0.8
    for _ in range(7):
        weight = plasticity.decayed(weight, WORKING, DAY, RULES)
    assert plasticity.decayed(0.8, WORKING, 7 * DAY, RULES) == pytest.approx(weight)


@given(weights, tiers, st.lists(st.tuples(st.booleans(), durations), max_size=30))
def test_weights_stay_between_zero_and_one(weight: float, tier: int, steps: list[tuple[bool, timedelta]]) -> None:
    for use, idle in steps:
        weight = plasticity.strengthen(weight, RULES) if use else plasticity.decayed(weight, tier, idle, RULES)
        assert 0.0 <= weight <= 1.0


@given(weights, tiers, durations, durations)
def test_decay_is_monotone_in_time(weight: float, tier: int, a: timedelta, b: timedelta) -> None:
    early, late = min(a, b), max(a, b)
    assert plasticity.decayed(weight, tier, late, RULES) <= plasticity.decayed(weight, tier, early, RULES) <= weight


@given(weights, tiers)
def test_no_time_no_decay(weight: float, tier: int) -> None:
    assert plasticity.decayed(weight, tier, timedelta(0), RULES) == weight


@given(tiers, weights, st.integers(min_value=0, max_value=100), durations)
def test_promotion_respects_the_thresholds(tier: int, weight: float, co_access: int, age: timedelta) -> None:
    new = plasticity.link_tier(tier, weight, co_access, age, RULES)
    assert abs(new - tier) <= 1
    if new == EPISODIC and tier == WORKING:
        assert co_access >= RULES.l2_min_co_access
        assert age >= DAY
    if new == SEMANTIC:
        assert tier == SEMANTIC or (co_access >= RULES.l3_min_co_access and weight >= RULES.l3_min_weight)
    if new < tier:
        assert weight < (RULES.demote_l3_below if tier == SEMANTIC else RULES.demote_l2_below)


@given(tiers, weights, st.integers(min_value=0, max_value=100), durations)
def test_tiers_reach_a_fixed_point(tier: int, weight: float, co_access: int, age: timedelta) -> None:
    seen = [tier]
    for _ in range(5):
        seen.append(plasticity.link_tier(seen[-1], weight, co_access, age, RULES))
    assert seen[-1] == seen[-2], seen


@given(durations, durations)
def test_memory_strength_fades_monotonically_from_one(a: timedelta, b: timedelta) -> None:
    early, late = min(a, b), max(a, b)
    assert plasticity.memory_strength(timedelta(0), RULES) == 1.0
    assert 0.0 < plasticity.memory_strength(late, RULES) <= plasticity.memory_strength(early, RULES) <= 1.0


def test_memory_strength_is_exponential_then_a_power_law_joined_at_the_knee() -> None:
    knee = timedelta(days=RULES.strength_exp_days)
    just_before = plasticity.memory_strength(knee - timedelta(seconds=1), RULES)
    just_after = plasticity.memory_strength(knee + timedelta(seconds=1), RULES)
    assert just_before == pytest.approx(just_after, rel=1e-4)
    day1, day2 = (plasticity.memory_strength(timedelta(days=d), RULES) for d in (1, 2))
    assert day2 / day1 == pytest.approx(day1 / 1.0)  # exponential: equal ratios per day
    month, two_months = (plasticity.memory_strength(timedelta(days=d), RULES) for d in (30, 60))
    assert two_months / month == pytest.approx(2**-RULES.strength_power)  # power law: ratio depends on the ratio


def test_activation_spreads_by_weight_and_hop_factor_and_not_back() -> None:
    graph = {1: [(2, 0.5, "temporal")], 2: [(1, 0.5, "temporal"), (3, 1.0, "coaccess")], 3: [(2, 1.0, "coaccess")]}
    reached = plasticity.spread({1: 1.0}, lambda n: graph.get(n, []), hops=2, hop_factor=0.7)
    assert reached[2].activation == pytest.approx(0.35)
    assert (reached[2].source, reached[2].kind, reached[2].hops) == (1, "temporal", 1)
    assert reached[3].activation == pytest.approx(0.35 * 0.7)
    assert reached[3].source == 2
    assert 1 not in reached, "activation does not come back to its seed along the link it left by"
    assert set(plasticity.spread({1: 1.0}, lambda n: graph.get(n, []), hops=1, hop_factor=0.7)) == {2}
