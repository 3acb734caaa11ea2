"""MemoryService: remember, recall, associate, forget. Synchronous and thread-safe; never imports mcp.

Writes go to DuckDB first (the truth), then to the vector and lexical indexes (caches). The indexes are
made ready by :meth:`MemoryService.warm_up` (model load, re-embedding after a model change, index
reconciliation); every call waits for it, so a memory is recallable the moment ``remember`` returns.
The service is the one facade: it owns the lifecycle and hands each operation to the class that carries it
out (remembering, recalling, linking, forgetting, archive, upkeep), all sharing one :class:`Core`.
"""

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hebbian_memory import inputs
from hebbian_memory._native import release_free_memory
from hebbian_memory.clock import Clock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder
from hebbian_memory.errors import HebbianMemoryError, StorageFaultError
from hebbian_memory.learning.feedback import Feedback, Report
from hebbian_memory.learning.graph import Learning
from hebbian_memory.models import (
    AssociateResult,
    ConsolidateResult,
    ExportResult,
    ForgetResult,
    ImportResult,
    MemoryInput,
    MemoryView,
    RecallResult,
    RememberResult,
    StatsResult,
)
from hebbian_memory.redaction import Redactor
from hebbian_memory.retrieval.catalog import Catalog
from hebbian_memory.retrieval.ranking import Ranker
from hebbian_memory.retrieval.source import CacheSource
from hebbian_memory.retrieval.vectors import VectorIndex
from hebbian_memory.service.archive import Archive
from hebbian_memory.service.associate import Linker
from hebbian_memory.service.core import Core
from hebbian_memory.service.forget import Forgetter
from hebbian_memory.service.locking import ReadWriteLock
from hebbian_memory.service.peers import Peers
from hebbian_memory.service.portability import LinkRecord, MemoryRecord, SessionRecord
from hebbian_memory.service.recall import Recaller
from hebbian_memory.service.remember import Rememberer
from hebbian_memory.service.scope import ProjectScope
from hebbian_memory.service.upkeep import Progress, Upkeep
from hebbian_memory.storage import PURGE_DUE, MemoryStore

__all__ = ["DEFAULT_PROJECT", "KEYWORD_BATCH", "REFUSED", "WARM_UP_TIMEOUT_S", "MemoryService", "Progress"]

log = logging.getLogger(__name__)

WARM_UP_TIMEOUT_S = 600.0
DEFAULT_PROJECT = inputs.DEFAULT_PROJECT
KEYWORD_BATCH = 5000
REFUSED = "This call was not carried out: it changed nothing, and nothing stored before was lost."


def _log_progress(stage: str, done: int, total: int) -> None:
    """The server's own progress report: a log line at every tenth of a step with more than 10,000 items."""
    step = max(total // 10, 1)
    if total > 10_000 and (done == total or done % step < KEYWORD_BATCH):
        log.info("%s: %d of %d", stage, done, total)


class MemoryService:
    """The memory operations, over one store, one vector index and one lexical index."""

    def __init__(self, settings: Settings, store: MemoryStore, embedder: Embedder, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._catalog = Catalog(settings, store)
        self._learning = Learning(settings.plasticity)
        self._feedback = Feedback(settings, store, self._learning, clock)
        catalog = self._catalog
        self._source = CacheSource(store, catalog, self._learning, settings.lexical.metadata_keys)
        ranker = Ranker(
            settings.recall, settings.plasticity, self._source, self._feedback.priors, embedder.embed_together
        )
        catalog.kinds_on = ranker.kinds_on
        self._index: VectorIndex | None = None
        self._write_lock = ReadWriteLock()
        self._peers = Peers()
        self._core = Core(
            settings,
            store,
            embedder,
            clock,
            catalog,
            self._source,
            self._learning,
            self._feedback,
            Redactor(settings.privacy.redact_secrets, settings.privacy.extra_patterns),
            self._write_lock,
            self._wait_ready,
            self._peers.catch_up,
        )
        self._peers.attach(self._core)
        self._rememberer = Rememberer(self._core)
        self._recaller = Recaller(self._core, ranker)
        self._linker = Linker(self._core)
        self._forgetter = Forgetter(self._core)
        self._archive = Archive(self._core)
        self._upkeep = Upkeep(self._core)
        self._ready = threading.Event()
        self._lifecycle = threading.Lock()
        self._warming = self._closed = False
        self._warm_up_error: HebbianMemoryError | None = None
        self._last_save = time.monotonic()
        # A background write (flush) the disk refused: retried by every flush, and before every write call.
        self._fault: StorageFaultError | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def warm_up(
        self, progress: Progress | None = None, reembed: bool = False, rebuild: bool = False, load_model: bool = True
    ) -> None:
        """Load the model and make both indexes agree with the database. Blocking; run it in a thread.
        ``progress(stage, done, total)`` hears about long steps (default: a log line every tenth);
        ``reembed`` embeds every memory again, ``rebuild`` builds the vector index anew; without ``load_model``
        the model loads at the first embedding instead (for one-off commands that may embed nothing)."""
        report = progress or _log_progress
        with self._lifecycle:
            if self._closed:  # closed before this thread got to run: nothing to warm up
                return
            self._warming = True
        try:
            started = time.perf_counter()
            if load_model:
                self._embedder.load()
            self._upkeep.reembed_if_model_changed(report, everything=reembed)
            self._peers.begin()
            index = VectorIndex(
                self._settings.data_dir / "vectors.usearch",
                self._embedder.model_id,
                self._embedder.dim,
                self._settings.index,
            )
            stored = self._store.all_ids()
            outcome = index.open(
                stored,
                lambda ids: self._store.embeddings(ids, self._embedder.dim),
                lambda done: report("vector index", done, len(stored)),
                rebuild=rebuild or reembed,
            )
            self._index = index
            self._source.use(index)
            self._save_and_purge_at_start(index, outcome != "loaded")
            done = 0
            for docs in self._store.iter_documents(KEYWORD_BATCH):
                self._source.indexed(docs)
                done += len(docs)
                report("keyword index", done, len(stored))
            self._catalog.recount(self._store.project_counts())
            self._upkeep.trim_events(self._clock.now())  # also where learning is off, so no pass runs
            if self._settings.plasticity.enabled:
                self._learning.load(self._store.graph())
                self._feedback.load(self._store.uses())
            self._peers.ready()
            release_free_memory()
            log.info(
                "ready: %d memories, vector index %s, in %.2f s",
                len(self._catalog.lexical),
                outcome,
                time.perf_counter() - started,
            )
        except HebbianMemoryError as e:
            self._warm_up_error = e
            log.error("cannot start: %s", e)
        finally:
            self._ready.set()

    def _save_and_purge_at_start(self, index: VectorIndex, save: bool) -> None:
        """Save a rebuilt index and finish a purge a crash cut short; a disk refusing them does not stop the start:
        both are retried by the flush loop, and reads work meanwhile."""
        try:
            if save:
                index.save()
            if self._store.get_meta(PURGE_DUE):  # a forget whose purge a crash cut short
                self._forgetter.purge()
        except StorageFaultError as e:
            log.error("at start: %s", e)
            self._fault = self._forgetter.unfinished = e

    def _wait_ready(self) -> VectorIndex:
        if not self._ready.wait(WARM_UP_TIMEOUT_S):
            raise HebbianMemoryError("The memory is still starting up (loading the model). Try again shortly.")
        if self._warm_up_error is not None:
            raise self._warm_up_error
        assert self._index is not None
        return self._index

    def flush(self, force: bool = False) -> None:
        """Record buffered access events; save the vector index if enough changes or time have accumulated
        (or always, with ``force``); finish a forget a disk fault cut short. A disk refusing this raises
        StorageFaultError (nothing is lost: it is all kept to write later) and the next write call tries first."""
        try:
            self._flush(force or self._fault is not None)
        except StorageFaultError as e:
            self._fault = e
            raise
        if self._fault is not None:
            log.warning("the disk takes writes again; what was pending is written")
            self._fault = None

    def _writable(self) -> None:
        """Before a write: a background write the disk refused is tried again; if it still fails, so does this
        call, before it changes anything."""
        if self._fault is not None:
            try:
                self.flush(force=True)
            except StorageFaultError as e:
                raise e.with_outcome(REFUSED) from e

    def _flush(self, force: bool) -> None:
        self._peers.catch_up()  # keeps the caches near the database between recalls (which catch up anyway)
        self._peers.trim()
        self._core.apply_learning()
        self._forgetter.finish()
        index = self._index
        if index is None or index.unsaved_changes == 0:
            return
        s = self._settings.index
        due = (
            index.unsaved_changes >= s.save_every_changes or time.monotonic() - self._last_save >= s.save_every_seconds
        )
        if force or due:
            with self._write_lock:
                index.save()
            self._last_save = time.monotonic()

    def close(self) -> None:
        """Save the index and close the database; waits for a running warm-up."""
        with self._lifecycle:
            self._closed = True
            warming = self._warming
        if warming:
            self._ready.wait(WARM_UP_TIMEOUT_S)
        else:  # never warmed up: calls still waiting must not wait for it
            self._warm_up_error = HebbianMemoryError("The memory server is shutting down. Try again shortly.")
            self._ready.set()
        try:
            self.flush(force=True)
        except StorageFaultError as e:  # the database keeps every memory; the index is reconciled at the next start
            log.error("closing with unsaved changes: %s", e)
        finally:
            self._store.close()

    def start_session(
        self,
        transport: str,
        client_name: str | None = None,
        client_version: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> int:
        session_id = self._store.start_session(
            transport, client_name, client_version, inputs.project(project), self._clock.now()
        )
        self._catalog.session_started(session_id)
        with self._write_lock:
            self._feedback.started(session_id, client_name)
        return session_id

    def end_session(self, session_id: int) -> None:
        self._store.end_session(session_id, self._clock.now())
        self._core.apply_learning()
        with self._write_lock:
            self._learning.end_session(session_id)
            self._feedback.ended(session_id)

    # --- the operations ----------------------------------------------------------------------------------

    def remember(
        self,
        content: str,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float = 0.5,
        event_time: str | datetime | None = None,
        session_id: int | None = None,
        project: str = DEFAULT_PROJECT,
        used: Sequence[int] | None = None,
    ) -> RememberResult:
        item = MemoryInput(
            content=content,
            tags=list(tags) if tags is not None else None,
            metadata=dict(metadata or {}),
            importance=importance,
            event_time=event_time.isoformat() if isinstance(event_time, datetime) else event_time,
        )
        return self.remember_many([item], session_id, project, used=used)[0]

    def remember_many(
        self,
        items: Sequence[MemoryInput],
        session_id: int | None = None,
        project: str = DEFAULT_PROJECT,
        validate_only: bool = False,
        used: Sequence[int] | None = None,
        scope: ProjectScope | None = None,
    ) -> list[RememberResult]:
        """Store many memories at once (see remembering); one bad item stores none. ``used``: the memories
        they were written from (a use report, linking them to the new ones; only ids of ``project`` count)."""
        project = project if scope is None else scope.check(project)
        report = Report.of(used, None, self._settings.limits.max_ids)
        if not validate_only:
            self._writable()
        return self._rememberer.remember_many(items, session_id, project, validate_only, report)

    def recall(
        self,
        query: str,
        k: int | None = None,
        tags: Sequence[str] | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        token_budget: int | None = None,
        project: str | None = DEFAULT_PROJECT,
        session_id: int | None = None,
        min_relevance: float | None = None,
        used: Sequence[int] | None = None,
        misled: Sequence[int] | None = None,
        scope: ProjectScope | None = None,
    ) -> RecallResult:
        """Best memories for ``query`` in ``project`` (None: in every project ``scope`` allows) whose relevance
        reaches ``min_relevance`` (default: recall.min_relevance). ``used``/``misled``: a report on earlier hits."""
        report = Report.of(used, misled, self._settings.limits.max_ids)
        return self._recaller.recall(
            query, k, tags, since, until, token_budget, project, session_id, min_relevance, report, scope
        )

    def associate(
        self,
        source_id: int,
        target_ids: Sequence[int],
        strength: float | None = None,
        session_id: int | None = None,
        scope: ProjectScope | None = None,
    ) -> AssociateResult:
        self._writable()
        return self._linker.associate(source_id, target_ids, strength, session_id, scope)

    def forget(
        self,
        ids: Sequence[int] | None = None,
        tags: Sequence[str] | None = None,
        before: str | datetime | None = None,
        project: str | None = DEFAULT_PROJECT,
        scope: ProjectScope | None = None,
    ) -> ForgetResult:
        """Delete every memory matching all given criteria, from the database and both indexes. Ids name
        memories in any project ``scope`` allows; tags and before select only within ``project`` (None: in every
        project it allows)."""
        self._writable()
        result = self._forgetter.forget(ids, tags, before, project, scope)
        self._fault = self._fault or self._forgetter.unfinished
        return result

    def consolidate(self) -> ConsolidateResult:
        """One consolidation pass now: decay, tiers, pruning, replay (see maintenance)."""
        self._writable()
        return self._upkeep.consolidate()

    def stats(self, scope: ProjectScope | None = None) -> StatsResult:
        return self._upkeep.stats(scope)

    def links(self, memory_id: int) -> list[tuple[int, float]]:
        """(neighbour id, weight now) of every stored link of a memory."""
        return self._linker.links(memory_id)

    def get(self, ids: Sequence[int], scope: ProjectScope | None = None) -> list[MemoryView]:
        """Stored memories by id, in the order asked; unknown ids (and ids outside ``scope``) raise
        MemoryNotFoundError."""
        return self._archive.get(ids, scope)

    def recent(self, limit: int, project: str = DEFAULT_PROJECT) -> list[MemoryView]:
        """The newest memories of ``project``, newest first."""
        return self._archive.recent(limit, project)

    def export(self, path: Path) -> ExportResult:
        """Every session, memory and link to ``path`` (JSON lines), from one consistent snapshot."""
        return self._archive.export(path)

    def import_sessions(self, records: Sequence[SessionRecord]) -> ImportResult:
        self._writable()
        return self._archive.import_sessions(records)

    def import_memories(self, records: Sequence[MemoryRecord]) -> ImportResult:
        """Memories from an export file, checked and redacted like remember's; duplicates return the stored id."""
        self._writable()
        return self._archive.import_memories(records)

    def import_links(self, records: Sequence[LinkRecord]) -> ImportResult:
        """Links whose ends are stored (ids already translated); an existing link is left as it is."""
        self._writable()
        return self._archive.import_links(records)
