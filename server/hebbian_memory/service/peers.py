"""Catching up with other servers: where several servers share one database (storage.postgres), each keeps its
own caches (vector index, keyword index, link graph, project counts), and the store's change log says what the
others changed. A recall catches up before it ranks, so it sees every write acknowledged anywhere before it
began. Applying a change twice does no harm, so this server's own changes, logged too, cost a re-read only. The
log is trimmed (``trim``, at flushes); a server that fell behind what was trimmed reloads its caches from the
tables."""

import logging

import numpy as np

from hebbian_memory.service.core import Core

__all__ = ["Peers"]

log = logging.getLogger(__name__)

# The change log keeps the newest CHANGES_KEPT changes (transactions): a server that falls further behind (a laptop
# asleep for hours under a busy team) reloads its caches, as a start does. Trimmed by whichever server first sees
# TRIM_EVERY more since it last trimmed: one indexed DELETE.
CHANGES_KEPT = 100_000
TRIM_EVERY = 10_000
RELOAD_BATCH = 5000  # memories read per step of a reload (their vectors, and their episodes' documents)


class Peers:
    """The point of the change log this server's caches reflect, and catching up from it."""

    def __init__(self) -> None:
        self._core: Core | None = None  # the service's, attached once it is built (it holds catch_up)
        self._seen: int | None = None  # None: until warm-up has filled the caches
        self._start = 0
        self._trimmed_at = 0  # the head when this server last trimmed the log

    def attach(self, core: Core) -> None:
        self._core = core

    @property
    def core(self) -> Core:
        assert self._core is not None, "used before the service attached its core"
        return self._core

    def begin(self) -> None:
        """Note the log's head before warm-up loads the caches: whatever commits during the load is applied
        (again, harmlessly) at the first catch-up."""
        self._start = self.core.store.change_head()

    def ready(self) -> None:
        """Warm-up has filled the caches: catching up may start."""
        self._seen = self._start

    def catch_up(self) -> None:
        """Apply what other servers changed since the last catch-up (one cheap read when nothing did)."""
        core = self.core
        seen = self._seen
        if seen is None or core.store.change_head() == seen:
            return
        with core.lock:
            seen = self._seen
            assert seen is not None
            news = core.store.changes(seen)
            if not news.complete:
                self._reload()
                return
            if news.head == seen:
                return
            store, source = core.store, core.source
            gone = sorted(news.removed)
            # A memory with a vector here already is this server's own (its caches took it when it stored it) or
            # re-embedded (a model change, which every server makes at its own start): it stays as it is, unread.
            named = sorted(news.stored - news.removed)
            known = source.with_vectors(named)
            fresh = sorted(store.get([i for i in named if i not in known]))  # those still stored
            # Own forgets left the caches already: only memories still here were forgotten elsewhere.
            self._apply(fresh, sorted(source.with_vectors(gone)) if gone else [], gone)
            if news.links and core.settings.plasticity.enabled:
                pairs = sorted(news.links)
                present = store.links_between(pairs)
                core.learning.saved(present.values(), [p for p in pairs if p not in present])
            if news.uses and core.settings.plasticity.enabled:
                core.feedback.load(store.uses(sorted(news.uses)), keep=True)
            self._seen = news.head
            log.debug("caught up to change %d: %d stored, %d removed, %d links, %d use records", news.head,
                      len(fresh), len(gone), len(news.links), len(news.uses))  # fmt: skip

    def trim(self) -> None:
        """Drop the log's old changes once it has grown TRIM_EVERY since the last trim (every flush asks)."""
        seen = self._seen
        if seen is not None and seen - self._trimmed_at >= TRIM_EVERY:
            self.core.store.trim_changes(CHANGES_KEPT)
            self._trimmed_at = seen

    def _reload(self) -> None:
        """The log was trimmed past this server's point (it fell far behind): compare the caches with the database
        and take the whole link graph and use records again, as a start would."""
        core = self.core
        store = core.store
        head = store.change_head()  # whatever commits from here on is applied (again, harmlessly) next time
        stored = set(store.all_ids().tolist())
        held = core.source.held()
        gone = sorted(held - stored)
        fresh = sorted(stored - held)
        self._apply([], gone, gone)
        for start in range(0, len(fresh), RELOAD_BATCH):
            self._apply(fresh[start : start + RELOAD_BATCH], [], [])
        if core.settings.plasticity.enabled:
            core.learning.load(store.graph())
            core.feedback.load(store.uses())
        self._seen = head
        log.warning("this server fell behind what the change log keeps: caches reloaded to change %d (%d memories "
                    "added, %d removed)", head, len(fresh), len(gone))  # fmt: skip

    def _apply(self, fresh: list[int], theirs_gone: list[int], gone: list[int]) -> None:
        """Memories stored elsewhere (``fresh``, still stored) into the caches, forgotten ones out of them
        (``gone``; ``theirs_gone``: those this server's caches still held)."""
        core = self.core
        store, source = core.store, core.source
        if gone:
            source.removed(gone)
            core.learning.forget(gone)
            core.feedback.forget(gone)
        if fresh:
            source.added(fresh, np.asarray(store.embeddings(fresh, core.embedder.dim), dtype=np.float32))
            # The new memories and their neighbours in their episodes, whose keyword context they join.
            # A neighbour committed after the change log was read has no vector here yet: it comes next time.
            docs = store.documents_around(fresh)
            vectored = source.with_vectors([d.id for d in docs])
            source.indexed([d for d in docs if d.id in vectored])
        if fresh or theirs_gone:
            core.catalog.writes += 1  # a remember that planned before this re-reads its session's tail
            core.catalog.recount(store.project_counts())
