"""The third factor of learning, as pure functions: how surprising a use report is, and the use history prior.

A report ("I used these hits", "this one misled me") is a modulatory signal. Learning follows the prediction
error (the delta rule): what a client reports about a hit teaches in proportion to how unexpected it was. The
expectation is learned per client from its own reports, by rank: a client that always uses its first two hits
soon predicts its own reports, and they teach almost nothing; a hit used from rank 7 teaches nearly in full.
The prior is ACT-R's base-level activation in spirit: more and more recent use, a higher prior, fading on the
memory strength curve (plasticity.memory_strength); it counts for queries like those the memory was used for
(its cue), so a memory used for one task does not push into recalls about another. No I/O, no clock: callers
pass times in."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import plasticity
from hebbian_memory.storage import UseRow

__all__ = ["RANKS", "Expectation", "Vector", "cue_match", "current", "prior", "reported", "surprises"]

# The expectation before a client has said anything: a Beta(1, 1) prior on "a hit at rank r is used", so the
# first reports teach by half, and about ten reports settle a rank's rate.
_PRIOR_USED, _PRIOR_SHOWN = 1.0, 2.0
RANKS = 100  # ranks tracked: recall's largest k
Vector = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(slots=True)
class Expectation:
    """A client's observed rate of using a hit at each rank of the recalls it reported on."""

    shown: list[float] = field(default_factory=lambda: [0.0] * RANKS)
    used: list[float] = field(default_factory=lambda: [0.0] * RANKS)

    def rate(self, rank: int) -> float:
        """The chance this client uses a hit shown at ``rank`` (0 = the top hit)."""
        return (self.used[rank] + _PRIOR_USED) / (self.shown[rank] + _PRIOR_SHOWN)

    def observe(self, shown: Sequence[int], used: set[int]) -> None:
        for rank, memory_id in enumerate(shown[:RANKS]):
            self.shown[rank] += 1.0
            self.used[rank] += memory_id in used


def surprises(expectation: Expectation, shown: Sequence[int], used: Sequence[int]) -> dict[int, float]:
    """How much each used memory's report teaches: 1 - the expected rate at the rank it was shown, 1 for a
    memory the last recall did not show (found some other way: a deliberate choice)."""
    ranks = {memory_id: rank for rank, memory_id in enumerate(shown[:RANKS])}
    return {m: 1.0 - expectation.rate(ranks[m]) if m in ranks else 1.0 for m in used}


def current(row: UseRow, now: datetime, rules: PlasticitySettings) -> tuple[float, float]:
    """Uses and misleads as of ``now``: faded on the memory strength curve since the last report."""
    kept = plasticity.memory_strength(now - row.used_at, rules)
    return row.uses * kept, row.misleads * kept


def reported(
    row: UseRow | None,
    memory_id: int,
    used: float,
    misled: float,
    now: datetime,
    rules: PlasticitySettings,
    asked: Vector | None = None,
) -> UseRow:
    """A memory's record after a report adds ``used`` and ``misled`` (each 0..1) to it; ``asked``, the query it
    was used for, joins its cue weighted by ``used``."""
    uses, misleads = (0.0, 0.0) if row is None else current(row, now, rules)
    cue, weight = (None, 0.0) if row is None else (row.cue, row.cue_weight)
    if asked is not None and used > 0:
        mixed = asked * used if cue is None else cue * weight + asked * used
        cue, weight = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32), weight + used
    return UseRow(memory_id, uses + used, misleads + misled, now, cue, weight)


def prior(row: UseRow | None, now: datetime, rules: PlasticitySettings, query: Vector) -> float:
    """The use history prior for ``query``, -1..1: u / (1 + u) for use, times how like the queries it was used
    for ``query`` is (encoding specificity: use is remembered with its context; no cue known, in full); less
    m / (1 + m) for misleading, whatever is asked."""
    if row is None:
        return 0.0
    uses, misleads = current(row, now, rules)
    like = 1.0 if row.cue is None else cue_match(float(row.cue @ query), rules.cue_threshold)
    return like * uses / (1.0 + uses) - misleads / (1.0 + misleads)


def cue_match(cosine: float, threshold: float) -> float:
    """0 at or under ``threshold`` (another topic), rising linearly to 1 for the very query it was used for."""
    return min(1.0, max(0.0, (cosine - threshold) / (1.0 - threshold)))
