"""How links grow, as data the store applies atomically: a batch of ``Growth`` under one ``GrowthRule``. Hebbian
learning on several servers sharing one database must not read a weight, change it in Python and write it back
(two servers would lose one of two updates), so the store computes each new weight from the stored one inside
the statement that writes it. ``grown`` is that computation for the backends that run it in Python under their
own transaction; a SQL backend runs the same formula in SQL (the backend parity tests hold them equal)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from hebbian_memory.storage.rows import Link

__all__ = ["Decay", "Growth", "GrowthRule", "decayed", "grown"]


@dataclass(frozen=True, slots=True)
class Decay:
    """Per-cycle weight factors of links by tier (1 working, 2 episodic, 3 semantic), continuous in time."""

    working: float
    episodic: float
    semantic: float
    cycle_hours: float

    def rate(self, tier: int) -> float:
        return self.working if tier == 1 else self.episodic if tier == 2 else self.semantic


@dataclass(frozen=True, slots=True)
class Growth:
    """One link's gain: its weight ``w``, decayed to now (0 for a new link), becomes
    ``min(1, w + add + toward * (1 - w))``."""

    source_id: int  # < target_id
    target_id: int
    add: float
    toward: float = 0.0


@dataclass(frozen=True, slots=True)
class GrowthRule:
    """What a batch of growth does besides the weight: a new link's kind and tier; an existing link's tier is
    raised to at least ``tier`` and, if its kind is one of ``relabel``, it takes ``kind``. Co-access count +1,
    updated and last strengthened now."""

    kind: str
    tier: int
    relabel: frozenset[str]
    decay: Decay


def decayed(weight: float, tier: int, idle: timedelta, decay: Decay) -> float:
    """A weight after ``idle`` time without use: x rate per cycle, continuously (nothing for no time)."""
    cycles = idle / timedelta(hours=decay.cycle_hours)
    if cycles <= 0:
        return weight
    return weight * decay.rate(tier) ** cycles


def grown(old: Link | None, growth: Growth, rule: GrowthRule, now: datetime) -> Link:
    """The link after ``growth``: what every backend stores for it."""
    ends = (growth.source_id, growth.target_id)
    if old is None:
        weight = min(1.0, growth.add + growth.toward)
        return Link(*ends, weight, rule.tier, rule.kind, 1, now, now, now)
    current = decayed(old.weight, old.tier, now - old.updated_at, rule.decay)
    weight = min(1.0, current + growth.add + growth.toward * (1.0 - current))
    kind = rule.kind if old.kind in rule.relabel else old.kind
    return Link(*ends, weight, max(old.tier, rule.tier), kind, old.co_access_count + 1, old.created_at, now, now)
