"""The consolidation pass: links decay by elapsed time, change tier and are pruned and bounded; important
memories are replayed (their strongest links reactivated); memory strength and tiers follow."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from hebbian_memory import plasticity
from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import Learning, Pair
from hebbian_memory.storage import Link, Store

REPLAY_LINKS = 3  # links reactivated per replayed memory: its strongest


@dataclass(frozen=True, slots=True)
class PassReport:
    at: datetime
    links: int
    pruned: int
    promoted: int
    demoted: int
    replayed: int
    memory_tiers_changed: int


def consolidate(store: Store, learning: Learning, now: datetime) -> PassReport:
    """One pass at ``now``. Idempotent for the same ``now``: decay is by elapsed time, tiers are taken to
    their fixed point, and a memory is replayed at most once per cycle."""
    rules = learning.rules
    kept, changed, pruned, promoted, demoted = _decay(store.all_links(), now, rules)
    kept, bounded = _bound(kept, rules)
    dropped = set(bounded)
    store.save_links([x for x in changed if (x.source_id, x.target_id) not in dropped], pruned + bounded)
    learning.saved(kept, pruned + bounded)  # the graph holds every weight decayed to now
    replayed = _replay(store, learning, kept, now)
    changed = _memory_tiers(store, now, rules)
    return PassReport(now, learning.link_count(), len(pruned) + len(bounded), promoted, demoted, replayed, changed)


def _decay(
    links: list[Link], now: datetime, rules: PlasticitySettings
) -> tuple[list[Link], list[Link], list[Pair], int, int]:
    """Every surviving link decayed to ``now``, those whose tier changed (only they are written: a stored
    weight is the weight as of its ``updated_at``, so decay needs no write), and the pruned ones."""
    kept: list[Link] = []
    changed: list[Link] = []
    pruned: list[Pair] = []
    promoted = demoted = 0
    for link in links:
        weight = plasticity.decayed(link.weight, link.tier, now - link.updated_at, rules)
        if weight < rules.floor:
            pruned.append((link.source_id, link.target_id))
            continue
        tier = link.tier
        while (step := plasticity.link_tier(tier, weight, link.co_access_count, now - link.created_at, rules)) != tier:
            tier = step
        promoted += tier > link.tier
        demoted += tier < link.tier
        now_link = Link(
            link.source_id,
            link.target_id,
            weight,
            tier,
            link.kind,
            link.co_access_count,
            link.created_at,
            now,
            link.last_strengthened_at,
        )
        kept.append(now_link)
        if tier != link.tier:
            changed.append(now_link)
    return kept, changed, pruned, promoted, demoted


def _bound(links: list[Link], rules: PlasticitySettings) -> tuple[list[Link], list[Pair]]:
    """Keep at most ``max_links_per_memory`` links at each memory and ``max_links`` in all: the strongest."""
    per_memory: Counter[int] = Counter()
    kept: list[Link] = []
    dropped: list[Pair] = []
    for link in sorted(links, key=lambda x: -x.weight):
        full = max(per_memory[link.source_id], per_memory[link.target_id]) >= rules.max_links_per_memory
        if full or len(kept) >= rules.max_links:
            dropped.append((link.source_id, link.target_id))
            continue
        per_memory[link.source_id] += 1
        per_memory[link.target_id] += 1
        kept.append(link)
    return kept, dropped


def _replay(store: Store, learning: Learning, links: list[Link], now: datetime) -> int:
    """Rehearse the most important recent memories (importance x strength) not replayed within the last
    cycle: their strongest links are reactivated, as a co-access, and the replay restores their strength."""
    rules = learning.rules
    cycle = timedelta(hours=rules.cycle_hours)
    candidates = [m for m in store.memory_states() if m.last_replayed is None or m.last_replayed <= now - cycle]
    scored = sorted(
        ((m.importance * plasticity.memory_strength(now - m.last_use, rules), m.id) for m in candidates),
        reverse=True,
    )
    chosen = [memory_id for score, memory_id in scored[: rules.replay_count] if score >= 0.05]
    if not chosen:
        return 0
    by_memory: dict[int, list[Link]] = {}
    for link in links:
        by_memory.setdefault(link.source_id, []).append(link)
        by_memory.setdefault(link.target_id, []).append(link)
    pairs = {
        (link.source_id, link.target_id)
        for memory_id in chosen
        for link in sorted(by_memory.get(memory_id, []), key=lambda x: -x.weight)[:REPLAY_LINKS]
    }
    learning.strengthen(store, sorted(pairs), now)
    store.mark_replayed(chosen, now)
    return len(chosen)


def _memory_tiers(store: Store, now: datetime, rules: PlasticitySettings) -> int:
    """Strength from the time since last use; tiers to their fixed point. Only memories whose tier changed or
    whose stored strength is off by more than 0.05 are written."""
    ids: list[int] = []
    strengths: list[float] = []
    tiers: list[int] = []
    changed = 0
    for m in store.memory_states():
        strength = plasticity.memory_strength(now - m.last_use, rules)
        tier = m.tier
        while (step := plasticity.memory_tier(tier, m.uses, strength)) != tier:
            tier = step
        changed += tier != m.tier
        if tier != m.tier or abs(strength - m.strength) > 0.05:
            ids.append(m.id)
            strengths.append(round(strength, 6))
            tiers.append(tier)
    store.set_memory_states(ids, strengths, tiers)
    return changed
