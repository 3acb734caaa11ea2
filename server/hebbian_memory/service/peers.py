"""Catching up with other servers: where several servers share one database (storage.postgres), each keeps its
own caches (vector index, keyword index, link graph, project counts), and the store's change log says what the
others changed. A recall catches up before it ranks, so it sees every write acknowledged anywhere before it
began. Applying a change twice does no harm, so this server's own changes, logged too, cost a re-read only."""

import logging

import numpy as np

from hebbian_memory.service.core import Core

__all__ = ["Peers"]

log = logging.getLogger(__name__)


class Peers:
    """The point of the change log this server's caches reflect, and catching up from it."""

    def __init__(self) -> None:
        self._core: Core | None = None  # the service's, attached once it is built (it holds catch_up)
        self._seen: int | None = None  # None: until warm-up has filled the caches
        self._start = 0

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
            if news.head == seen:
                return
            store, source, learning, catalog = core.store, core.source, core.learning, core.catalog
            gone = sorted(news.removed)
            # Own forgets left the caches already: only memories still here were forgotten elsewhere.
            theirs_gone = source.with_vectors(gone) if gone else set[int]()
            if gone:
                source.removed(gone)
                learning.forget(gone)
                core.feedback.forget(gone)
            # A memory with a vector here already is this server's own (its caches took it when it stored it) or
            # re-embedded (a model change, which every server makes at its own start): it stays as it is, unread.
            named = sorted(news.stored - news.removed)
            known = source.with_vectors(named)
            fresh = sorted(store.get([i for i in named if i not in known]))  # those still stored
            if fresh:
                source.added(fresh, np.asarray(store.embeddings(fresh, core.embedder.dim), dtype=np.float32))
                # The new memories and their neighbours in their episodes, whose keyword context they join.
                # A neighbour committed after the change log was read has no vector here yet: it comes next time.
                docs = store.documents_around(fresh)
                vectored = source.with_vectors([d.id for d in docs])
                source.indexed([d for d in docs if d.id in vectored])
            if fresh or theirs_gone:
                catalog.writes += 1  # a remember that planned before this re-reads its session's tail
                catalog.recount(store.project_counts())
            if news.links and core.settings.plasticity.enabled:
                pairs = sorted(news.links)
                present = store.links_between(pairs)
                learning.saved(present.values(), [p for p in pairs if p not in present])
            self._seen = news.head
            log.debug("caught up to change %d: %d stored, %d removed, %d links", news.head, len(fresh),
                      len(theirs_gone), len(news.links))  # fmt: skip
