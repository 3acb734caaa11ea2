"""The consolidation pass: links decay by elapsed time, change tier and are pruned and bounded; important
memories are replayed (their strongest links reactivated); memory strength and tiers follow."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import plasticity
from hebbian_memory.learning.graph import Learning, Pair
from hebbian_memory.storage import Link, LinkRows, LinkVersion, MemoryState

__all__ = ["REPLAY_LINKS", "PassReport", "Plan", "apply", "apply_memories", "plan", "stale_filter"]

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


@dataclass(frozen=True, slots=True)
class Plan:
    """What a pass will change, computed from a snapshot without holding the service's write lock."""

    now: datetime
    kept: list[Link]  # every surviving link, decayed to now (for the graph)
    changed: list[Link]  # those whose tier changed (written)
    dropped: list[Pair]  # pruned under the floor or over the bounds
    promoted: int
    demoted: int
    replay: list[int]  # memories to replay
    replay_pairs: list[Pair]  # their strongest links
    memory_updates: list[tuple[int, float, int]]  # (id, strength, tier) where they changed
    memory_tiers_changed: int
    as_of: dict[Pair, LinkVersion]  # the links it changes or drops, as the plan saw them


def plan(links: list[Link], memories: list[MemoryState], now: datetime, rules: PlasticitySettings) -> Plan:
    """The whole pass as data, from the links and memories read at ``now``. Idempotent for the same ``now``:
    decay is by elapsed time, tiers go to their fixed point, a memory is replayed at most once per cycle."""
    kept, changed, pruned, promoted, demoted = _decay(links, now, rules)
    kept, bounded = _bound(kept, rules)
    over = set(bounded)
    replay = _replay_choice(memories, now, rules)
    updates, tiers_changed = _memory_tiers(memories, now, rules)
    changed = [x for x in changed if (x.source_id, x.target_id) not in over]
    touched = {(x.source_id, x.target_id) for x in changed} | set(pruned) | over
    as_of = {
        (x.source_id, x.target_id): (x.updated_at, x.co_access_count)
        for x in links
        if (x.source_id, x.target_id) in touched
    }
    return Plan(
        now,
        kept,
        changed,
        pruned + bounded,
        promoted,
        demoted,
        replay,
        _strongest_pairs(kept, replay),
        updates,
        tiers_changed,
        as_of,
    )


def apply(plan: Plan, store: LinkRows, learning: Learning, touched: set[Pair], gone: set[int]) -> PassReport:
    """Write a plan's links (under the service's write lock), leaving out what changed since its snapshot:
    links strengthened meanwhile here (``touched``) or by any server (the store compares ``updated_at``) keep
    their newer state, and nothing is written for memories forgotten meanwhile (``gone``)."""

    def stale(ends: Pair) -> bool:
        return ends in touched or ends[0] in gone or ends[1] in gone

    changed = [x for x in plan.changed if not stale((x.source_id, x.target_id))]
    dropped = [ends for ends in plan.dropped if not stale(ends)]
    settled = store.settle_links(changed, dropped, plan.as_of)
    changed = [x for x in changed if (x.source_id, x.target_id) in settled]
    dropped = [ends for ends in dropped if ends in settled]
    learning.saved(changed, dropped)  # the other weights are refreshed in chunks afterwards (refresh_graph)
    learning.strengthen(store, [ends for ends in plan.replay_pairs if not stale(ends)], plan.now)
    return PassReport(
        plan.now,
        learning.link_count(),
        len(dropped),
        plan.promoted,
        plan.demoted,
        len([m for m in plan.replay if m not in gone]),
        plan.memory_tiers_changed,
    )


def apply_memories(plan: Plan, store: LinkRows) -> None:
    """Replay marks, strengths and tiers: columns nothing else in the service holds in memory, so this runs
    without the write lock (the store serialises its statements; a memory forgotten meanwhile matches no row)."""
    store.mark_replayed(plan.replay, plan.now)
    updates = plan.memory_updates
    store.set_memory_states([u[0] for u in updates], [u[1] for u in updates], [u[2] for u in updates])


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


def _replay_choice(memories: list[MemoryState], now: datetime, rules: PlasticitySettings) -> list[int]:
    """The most important recent memories (importance x strength) not replayed within the last cycle: replay
    reactivates their strongest links, as a co-access, and restores their strength."""
    cycle = timedelta(hours=rules.cycle_hours)
    scored = sorted(
        (
            (m.importance * plasticity.memory_strength(now - m.last_use, rules), m.id)
            for m in memories
            if m.last_replayed is None or m.last_replayed <= now - cycle
        ),
        reverse=True,
    )
    return [memory_id for score, memory_id in scored[: rules.replay_count] if score >= 0.05]


def _strongest_pairs(links: list[Link], memory_ids: list[int]) -> list[Pair]:
    wanted = set(memory_ids)
    by_memory: dict[int, list[Link]] = {}
    for link in links:
        for end in (link.source_id, link.target_id):
            if end in wanted:
                by_memory.setdefault(end, []).append(link)
    pairs = {
        (link.source_id, link.target_id)
        for near in by_memory.values()
        for link in sorted(near, key=lambda x: -x.weight)[:REPLAY_LINKS]
    }
    return sorted(pairs)


def _memory_tiers(
    memories: list[MemoryState], now: datetime, rules: PlasticitySettings
) -> tuple[list[tuple[int, float, int]], int]:
    """Strength from the time since last use; tiers to their fixed point. Only memories whose tier changed or
    whose stored strength is off by more than 0.05 are written."""
    updates: list[tuple[int, float, int]] = []
    changed = 0
    for m in memories:
        strength = plasticity.memory_strength(now - m.last_use, rules)
        tier = m.tier
        while (step := plasticity.memory_tier(tier, m.uses, strength)) != tier:
            tier = step
        changed += tier != m.tier
        if tier != m.tier or abs(strength - m.strength) > 0.05:
            updates.append((m.id, round(strength, 6), tier))
    return updates, changed


def stale_filter(touched: set[Pair], gone: set[int]) -> Callable[[Link], bool]:
    """True for links that changed, or lost a memory, after the plan's snapshot."""

    def fresh(link: Link) -> bool:
        ends = (link.source_id, link.target_id)
        return ends not in touched and ends[0] not in gone and ends[1] not in gone

    return fresh
