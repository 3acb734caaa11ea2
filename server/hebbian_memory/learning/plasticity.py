"""The learning rules as pure functions: Hebbian strengthening, decay by elapsed time, link and memory tiers,
memory strength, spreading activation. No I/O, no clock: callers pass times in."""

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from hebbian_memory.config import PlasticitySettings
from hebbian_memory.storage import Decay, GrowthRule
from hebbian_memory.storage.growth import decayed as decayed_by

__all__ = [
    "COACCESS",
    "EXPLICIT",
    "USED",
    "Neighbours",
    "Reached",
    "decay",
    "decay_rate",
    "decayed",
    "growth_rule",
    "link_tier",
    "memory_strength",
    "memory_tier",
    "spread",
    "strengthen",
]

WORKING, EPISODIC, SEMANTIC = 1, 2, 3  # tiers, after the phases of long-term potentiation


def strengthen(weight: float, rules: PlasticitySettings, times: int = 1) -> float:
    """Hebb: each co-access adds the increment; a weight never passes 1."""
    return min(1.0, weight + times * rules.increment)


def decay_rate(tier: int, rules: PlasticitySettings) -> float:
    return {WORKING: rules.decay_l1, EPISODIC: rules.decay_l2}.get(tier, rules.decay_l3)


def decay(rules: PlasticitySettings) -> Decay:
    return Decay(rules.decay_l1, rules.decay_l2, rules.decay_l3, rules.cycle_hours)


def decayed(weight: float, tier: int, idle: timedelta, rules: PlasticitySettings) -> float:
    """A link's weight after ``idle`` time without use: x rate per cycle, continuously, so decay depends only on
    the time elapsed (one pass after a week equals seven daily passes; a second pass at the same time is a no-op).
    The store applies the same formula when it grows a link (storage.growth)."""
    return decayed_by(weight, tier, idle, decay(rules))


# How each kind of learning grows links (the weight formula itself is storage.growth's):
# co-access (recalls needing the same pair, replay): a new link is a working co-access link; kinds are kept.
COACCESS = ("coaccess", WORKING, frozenset[str]())
# use reports: as co-access, but a temporal link that was used becomes a learned one.
USED = ("coaccess", WORKING, frozenset({"temporal"}))
# associate: explicit links start episodic (they decay slower) and an existing link becomes explicit.
EXPLICIT = ("explicit", EPISODIC, frozenset({"temporal", "coaccess"}))


def growth_rule(kind: tuple[str, int, frozenset[str]], rules: PlasticitySettings) -> GrowthRule:
    return GrowthRule(*kind, decay(rules))


def link_tier(tier: int, weight: float, co_access: int, age: timedelta, rules: PlasticitySettings) -> int:
    """Promotion by consistent use, demotion by fading; one step per pass."""
    if tier == SEMANTIC and weight < rules.demote_l3_below:
        return EPISODIC
    if tier == EPISODIC and weight < rules.demote_l2_below:
        return WORKING
    if tier == EPISODIC and co_access >= rules.l3_min_co_access and weight >= rules.l3_min_weight:
        return SEMANTIC
    if (
        tier == WORKING
        and co_access >= rules.l2_min_co_access
        and age >= timedelta(hours=rules.cycle_hours)
        and weight >= rules.demote_l2_below  # never promote what the next step would demote again
    ):
        return EPISODIC
    return tier


def memory_strength(since_use: timedelta, rules: PlasticitySettings) -> float:
    """Retention after ``since_use`` without access or replay: exponential for the first days, then a power law
    (the slow tail of forgetting curves), continuous where they meet; 1 right after use."""
    days = max(0.0, since_use / timedelta(days=1))
    knee = rules.strength_exp_days
    if days <= knee:
        return math.exp(-days / rules.strength_tau_days)
    return math.exp(-knee / rules.strength_tau_days) * (days / knee) ** -rules.strength_power


def memory_tier(tier: int, uses: int, strength: float) -> int:
    """Memories follow the same idea: L2 after 3 uses, L3 after 10 while strength >= 0.5; strength under 0.1
    -> down one step. The conditions exclude each other, so repeating this reaches a fixed point."""
    if strength < 0.1 and tier > WORKING:
        return tier - 1
    if tier == WORKING and uses >= 3 and strength >= 0.1:
        return EPISODIC
    if tier == EPISODIC and uses >= 10 and strength >= 0.5:
        return SEMANTIC
    return tier


@dataclass(frozen=True, slots=True)
class Reached:
    """A memory reached by spreading activation: how much arrived, and over which link."""

    activation: float
    source: int  # the memory the activation came from on the best path
    weight: float  # that link's weight
    kind: str
    hops: int


Neighbours = Callable[[int], Iterable[tuple[int, float, str]]]


def spread(
    seeds: Mapping[int, float],
    neighbours: Neighbours,
    hops: int,
    hop_factor: float,
    inside: Callable[[list[int]], set[int]] | None = None,
) -> dict[int, Reached]:
    """Activation from the seeds along links (x weight x hop_factor per hop, up to ``hops``); each memory keeps
    its strongest arrival. A seed can be reached from another seed too. With ``inside`` (those of the ids it is
    given that activation may enter, asked once per hop), activation neither reaches nor passes through the
    others: another project's memory adds nothing to this project's scores."""
    best: dict[int, Reached] = {}
    frontier = {node: (activation, node) for node, activation in seeds.items()}  # node -> (activation, came from)
    for hop in range(1, hops + 1):
        arriving: dict[int, Reached] = {}
        for node, (activation, came_from) in frontier.items():
            for neighbour, weight, kind in neighbours(node):
                if neighbour == came_from:
                    continue  # activation does not flow straight back along the link it came by
                value = activation * weight * hop_factor
                known = arriving.get(neighbour)
                if known is None or value > known.activation:
                    arriving[neighbour] = Reached(value, node, weight, kind, hop)
        if inside is not None and arriving:
            allowed = inside(list(arriving))
            arriving = {node: reached for node, reached in arriving.items() if node in allowed}
        frontier = {}
        for node, reached in arriving.items():
            if node not in best or reached.activation > best[node].activation:
                best[node] = reached
                frontier[node] = (reached.activation, reached.source)
    return best
