"""The use signal's maths (usage.py): surprise follows the prediction error, so a client that always reports its
first hits teaches almost nothing; the use history prior rises with use, fades with time and goes negative
for memories that misled."""

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from hebbian_memory.config import PlasticitySettings, load_settings
from hebbian_memory.learning import usage
from hebbian_memory.storage import UseRow

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def rules() -> PlasticitySettings:
    return load_settings(env={}, overrides={}).plasticity


def test_a_new_client_teaches_by_half_and_a_memory_not_shown_teaches_in_full() -> None:
    fresh = usage.Expectation()
    assert usage.surprises(fresh, [1, 2, 3], [2, 9]) == {2: pytest.approx(0.5), 9: 1.0}


def test_a_client_that_always_reports_its_top_two_soon_teaches_almost_nothing() -> None:
    sloppy = usage.Expectation()
    for n in range(30):
        shown = [10 * n + r for r in range(10)]
        sloppy.observe(shown, set(shown[:2]))
    taught = usage.surprises(sloppy, [1, 2, 3, 4], [1, 2])
    assert max(taught.values()) < 0.05
    # The same client using a hit from rank 4 is news.
    assert usage.surprises(sloppy, [1, 2, 3, 4], [4])[4] > 0.95


def _unit(*values: float) -> npt.NDArray[np.float32]:
    v = np.asarray(values, dtype=np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


ASKED = _unit(1, 0, 0)


def test_the_prior_rises_with_use_fades_with_time_and_turns_negative_when_misled(rules: PlasticitySettings) -> None:
    once = usage.reported(None, 7, 1.0, 0.0, NOW, rules)
    twice = usage.reported(once, 7, 1.0, 0.0, NOW, rules)
    assert 0 < usage.prior(once, NOW, rules, ASKED) < usage.prior(twice, NOW, rules, ASKED) < 1
    later = NOW + timedelta(days=30)
    assert 0 < usage.prior(twice, later, rules, ASKED) < usage.prior(twice, NOW, rules, ASKED)
    misled = usage.reported(twice, 7, 0.0, 1.0, NOW, rules)
    misled = usage.reported(misled, 7, 0.0, 1.0, NOW, rules)
    misled = usage.reported(misled, 7, 0.0, 1.0, NOW, rules)
    assert usage.prior(misled, NOW, rules, ASKED) < 0
    assert usage.prior(None, NOW, rules, ASKED) == 0.0


def test_use_counts_for_queries_like_those_it_answered_not_for_another_topic(rules: PlasticitySettings) -> None:
    used = usage.reported(None, 7, 1.0, 0.0, NOW, rules, asked=_unit(1, 0.2, 0))
    used = usage.reported(used, 7, 1.0, 0.0, NOW, rules, asked=_unit(1, -0.2, 0))
    assert used.cue is not None
    assert used.cue_weight == pytest.approx(2.0)
    assert float(used.cue @ ASKED) == pytest.approx(1.0, abs=1e-6)  # the mean of the two contexts
    same = usage.prior(used, NOW, rules, ASKED)
    near = usage.prior(used, NOW, rules, _unit(1, 1, 0))
    other = usage.prior(used, NOW, rules, _unit(0, 0, 1))
    assert same > near > 0
    assert other == 0.0
    # A misleading memory loses its prior whatever is asked.
    misled = usage.reported(used, 7, 0.0, 3.0, NOW, rules)
    assert usage.prior(misled, NOW, rules, _unit(0, 0, 1)) < 0


def test_a_report_adds_to_the_faded_record(rules: PlasticitySettings) -> None:
    old = UseRow(3, 2.0, 0.0, NOW - timedelta(days=10))
    new = usage.reported(old, 3, 0.5, 0.0, NOW, rules)
    uses, _ = usage.current(old, NOW, rules)
    assert new.uses == pytest.approx(uses + 0.5)
    assert new.uses < 2.5
    assert new.used_at == NOW
