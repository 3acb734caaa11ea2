"""Consolidation passes (planned from a snapshot without the write lock, written under it) and the counts
behind stats."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hebbian_memory._native import release_free_memory
from hebbian_memory.learning import maintenance
from hebbian_memory.models import ConsolidateResult, StatsResult
from hebbian_memory.service.core import Core
from hebbian_memory.service.scope import ProjectScope

__all__ = ["GRAPH_REFRESH_CHUNK", "LAST_PASS_META_KEY", "MODEL_META_KEY", "Progress", "Upkeep"]

log = logging.getLogger(__name__)

LAST_PASS_META_KEY = "last_consolidation"
MODEL_META_KEY = "embedding_model"
# A long warm-up step's progress: (stage, done, total).
Progress = Callable[[str, int, int], None]
PASS_LOCK = "consolidation"
GRAPH_REFRESH_CHUNK = 5000


class Upkeep:
    """consolidate, stats and the re-embedding after a model change."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def consolidate(self) -> ConsolidateResult:
        """One consolidation pass now: decay, tiers, pruning, replay (see maintenance)."""
        core = self._core
        core.wait_ready()
        with core.store.exclusive(PASS_LOCK):  # servers sharing the database take turns (each pass is idempotent)
            return self._consolidate()

    def _consolidate(self) -> ConsolidateResult:
        core = self._core
        store, learning = core.store, core.learning
        core.catch_up()  # plan from the links as every server left them
        core.apply_learning()
        with core.lock:
            now = core.clock.now()
            learning.watch()
        # The reading and the arithmetic (seconds at 100k memories) run without the write lock, so calls go on;
        # only the writes take it, and they skip whatever changed in the meantime.
        try:
            plan = maintenance.plan(store.all_links(), store.memory_states(), now, core.settings.plasticity)
            with core.lock:  # one hold: nothing can change between reading the changes and writing
                touched, gone = learning.changes()
                report = maintenance.apply(plan, store, learning, touched, gone)
            maintenance.apply_memories(plan, store)
            self.trim_events(now)
            store.set_meta(LAST_PASS_META_KEY, now.isoformat())
            # The graph takes the decayed weights in chunks, so calls wait milliseconds, not the whole refresh;
            # links written since the snapshot (including by apply) keep their newer weights.
            for start in range(0, len(plan.kept), GRAPH_REFRESH_CHUNK):
                with core.lock:
                    fresh = maintenance.stale_filter(*learning.changes())
                    learning.refresh(filter(fresh, plan.kept[start : start + GRAPH_REFRESH_CHUNK]))
        finally:
            with core.lock:
                learning.unwatch()
        release_free_memory()  # the pass read every link and memory state
        return ConsolidateResult(
            at=report.at,
            links=report.links,
            pruned=report.pruned,
            promoted=report.promoted,
            demoted=report.demoted,
            replayed=report.replayed,
            memory_tiers_changed=report.memory_tiers_changed,
        )

    def reembed_if_model_changed(self, report: Progress, everything: bool = False) -> None:
        """At warm-up: embed every memory again if any vector is of another model (or ``everything``)."""
        core = self._core
        model_id = core.embedder.model_id
        stale = core.store.models_in_use() - {model_id}
        if stale or everything:
            if stale:
                log.warning("embedding model changed (%s -> %s): re-embedding every memory", sorted(stale), model_id)
            total, done = core.store.count(), 0
            for batch in core.store.iter_contents(batch=1000):
                vectors = core.embedder.embed([content for _, content in batch])
                core.store.replace_embeddings({mid: v for (mid, _), v in zip(batch, vectors, strict=True)}, model_id)
                done += len(batch)
                report("re-embedding", done, total)
            if stale:  # contexts of use were query vectors of the old model (a re-embed by the same one keeps them)
                core.store.clear_cues()
        if core.store.get_meta(MODEL_META_KEY) != model_id:  # no write at a plain start: the disk may be full
            core.store.set_meta(MODEL_META_KEY, model_id)

    def trim_events(self, now: datetime) -> int:
        """Keep the access-event window (plasticity.events_keep_days, events_keep); how many events went."""
        rules = self._core.settings.plasticity
        return self._core.store.trim_events(now - timedelta(days=rules.events_keep_days), rules.events_keep)

    def stats(self, scope: ProjectScope | None = None) -> StatsResult:
        """Counts; under ``scope`` only its projects are named and counted in ``memories`` (tiers and links stay
        totals over the whole store: numbers, no names or text)."""
        core = self._core
        index = core.wait_ready()
        with core.lock.shared():  # reads only: one state of the database and the caches, beside recalls
            counts = core.store.counts()
            last = core.store.get_meta(LAST_PASS_META_KEY)
            projects = core.catalog.projects()
            if scope is not None:
                projects = {p: n for p, n in projects.items() if p in scope.projects}
            vectors, keywords = len(index), len(core.catalog.lexical)
        return StatsResult(
            memories=sum(projects.values()),
            memories_by_tier=counts.memories_by_tier,
            links=sum(counts.links_by_tier.values()),
            links_by_tier=counts.links_by_tier,
            links_by_kind=counts.links_by_kind,
            projects=projects,
            last_consolidation=datetime.fromisoformat(last) if last else None,
            vector_index=vectors,
            keyword_index=keywords,
        )
