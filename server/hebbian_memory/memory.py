"""MemoryService: remember, recall, associate, forget. Synchronous and thread-safe; never imports mcp.

Writes go to DuckDB first (the truth), then to the vector and lexical indexes (caches). The indexes are
made ready by :meth:`MemoryService.warm_up` (model load, re-embedding after a model change, index
reconciliation); every call waits for it, so a memory is recallable the moment ``remember`` returns.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from hebbian_memory import documents, inputs, maintenance, plasticity, portability, ranking
from hebbian_memory._native import release_free_memory
from hebbian_memory.clock import Clock
from hebbian_memory.config import LimitSettings, Settings
from hebbian_memory.embedding import Embedder, Vectors
from hebbian_memory.errors import HebbianMemoryError, InvalidInputError, MemoryNotFoundError
from hebbian_memory.idmap import IdBytes, IdMap
from hebbian_memory.index import VectorIndex
from hebbian_memory.learning import Learning, Pair, pair
from hebbian_memory.lexical import BM25Index, LexicalIndex
from hebbian_memory.models import (
    AssociateResult,
    Association,
    ConsolidateResult,
    ExportResult,
    ForgetResult,
    ImportResult,
    LinkVia,
    MemoryInput,
    MemoryView,
    RecallHit,
    RecallResult,
    RememberResult,
    ScoreParts,
    StatsResult,
)
from hebbian_memory.portability import LinkRecord, MemoryRecord, SessionRecord
from hebbian_memory.ranking import Ranker, estimate_tokens
from hebbian_memory.redaction import Redactor
from hebbian_memory.storage import PURGE_DUE, Chain, DocumentRow, Filters, Link, NewMemory, Store

log = logging.getLogger(__name__)

WARM_UP_TIMEOUT_S = 600.0
MAX_TOKEN_BUDGET = 1_000_000
DEFAULT_PROJECT = inputs.DEFAULT_PROJECT
NOTHING_STORED = "Nothing found. No stored memory matches these words and filters."


def nothing_relevant(floor: float, best: float) -> str:
    """The note of a recall whose every match fell below the relevance threshold."""
    return (
        f"No relevant memory: the best match's relevance is {best:.2f}, below min_relevance {floor:.2f}. Treat "
        "this as not remembered; recall with min_relevance 0 to see the weak matches anyway."
    )


_MODEL_META_KEY = "embedding_model"
_LAST_PASS_META_KEY = "last_consolidation"
GRAPH_REFRESH_CHUNK = 5000
KEYWORD_BATCH = 5000
# A long warm-up step's progress: (stage, done, total).
Progress = Callable[[str, int, int], None]


def _log_progress(stage: str, done: int, total: int) -> None:
    """The server's own progress report: a log line at every tenth of a step with more than 10,000 items."""
    step = max(total // 10, 1)
    if total > 10_000 and (done == total or done % step < KEYWORD_BATCH):
        log.info("%s: %d of %d", stage, done, total)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A validated memory ready to store."""

    content: str
    content_hash: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    importance: float
    event_time: datetime | None
    redacted: tuple[str, ...] = ()


class MemoryService:
    """The memory operations, over one Store, one vector index and one lexical index."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._fields = documents.field_specs(settings.lexical)
        self._lexical: LexicalIndex = BM25Index(self._fields, k1=settings.lexical.k1)
        self._entities: dict[int, frozenset[str]] = {}
        self._entity_sets: dict[frozenset[str], frozenset[str]] = {}
        self._previous_of = IdMap()  # memory id -> the memory before it in its session
        self._answer_kinds = IdBytes()  # memory id -> the kinds of answer its text holds (documents.TIME, ...)
        # The last memory stored in each live session, whose "next" context the following memory fills.
        self._episode_tail: dict[int, tuple[int, str]] = {}
        # Sessions started here have no memories yet; any other (one a previous owner started) may have some.
        self._fresh_sessions: set[int] = set()
        self._learning = Learning(settings.plasticity)
        self._ranker = Ranker(
            settings.recall,
            settings.plasticity,
            store,
            self._lexical,
            self._entities,
            self._answer_kinds,
            self._previous_of,
            self._learning.neighbours,
            embedder.embed_together,
            settings.lexical.metadata_keys,
        )
        self._redactor = Redactor(settings.privacy.redact_secrets, settings.privacy.extra_patterns)
        self._project_counts: dict[str, int] = {}  # memories per project: recall skips the filter if all are in one
        self._index: VectorIndex | None = None
        self._write_lock = threading.RLock()
        self._writes = 0  # bumped under the write lock whenever memories are stored or deleted
        self._ready = threading.Event()
        self._lifecycle = threading.Lock()
        self._warming = self._closed = False
        self._warm_up_error: HebbianMemoryError | None = None
        self._last_save = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------------------

    def warm_up(self, progress: Progress | None = None, reembed: bool = False, rebuild: bool = False) -> None:
        """Load the model and make both indexes agree with the database. Blocking; run it in a thread.
        ``progress(stage, done, total)`` hears about long steps (default: a log line every tenth);
        ``reembed`` embeds every memory again, ``rebuild`` builds the vector index anew."""
        report = progress or _log_progress
        with self._lifecycle:
            if self._closed:  # closed before this thread got to run: nothing to warm up
                return
            self._warming = True
        try:
            started = time.perf_counter()
            self._embedder.load()
            self._reembed_if_model_changed(report, everything=reembed)
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
            if outcome != "loaded":
                index.save()
            if self._store.get_meta(PURGE_DUE):  # a forget whose purge a crash cut short
                self._purge()
            done = 0
            for docs in self._store.iter_documents(KEYWORD_BATCH):
                self._index_documents(docs)
                done += len(docs)
                report("keyword index", done, len(stored))
            self._project_counts = self._store.project_counts()
            if self._settings.plasticity.enabled:
                self._learning.load(self._store.graph())
            release_free_memory()
            log.info(
                "ready: %d memories, vector index %s, in %.2f s",
                len(self._lexical),
                outcome,
                time.perf_counter() - started,
            )
        except HebbianMemoryError as e:
            self._warm_up_error = e
            log.error("cannot start: %s", e)
        finally:
            self._ready.set()

    def _reembed_if_model_changed(self, report: Progress, everything: bool = False) -> None:
        model_id = self._embedder.model_id
        stale = self._store.models_in_use() - {model_id}
        if stale or everything:
            if stale:
                log.warning("embedding model changed (%s -> %s): re-embedding every memory", sorted(stale), model_id)
            total, done = self._store.count(), 0
            for batch in self._store.iter_contents(batch=1000):
                vectors = self._embedder.embed([content for _, content in batch])
                self._store.replace_embeddings({mid: v for (mid, _), v in zip(batch, vectors, strict=True)}, model_id)
                done += len(batch)
                report("re-embedding", done, total)
        self._store.set_meta(_MODEL_META_KEY, model_id)

    def _index_documents(self, docs: Sequence[DocumentRow]) -> None:
        """(Re-)index memories in the keyword index, the entity map and the answer kinds."""
        keys, entity_keys = self._settings.lexical.metadata_keys, self._settings.recall.entity_keys
        turns = [documents.is_turn(doc, entity_keys) for doc in docs]
        self._lexical.add_many([(doc.id, documents.fields(doc, self._fields, keys)) for doc in docs])
        for doc, turn in zip(docs, turns, strict=True):
            found = documents.entities(doc.metadata, entity_keys, turn, doc.content)
            if found:
                # Shared: a store has few speakers, and a set per memory took 20 MB at 100,000 memories.
                self._entities[doc.id] = self._entity_sets.setdefault(found, found)
            kinds = documents.answer_kinds(doc.content) & self._ranker.kinds_on
            self._answer_kinds[doc.id] = kinds | (documents.TURN if turn else 0)
            if doc.previous_id is not None:
                self._previous_of[doc.id] = doc.previous_id
            else:
                self._previous_of.pop(doc.id)

    def _mark_turn(self, memory_id: int, content: str, following: str) -> None:
        """A session's first labelled memory becomes a dialog turn once a labelled one follows it."""
        kinds = self._answer_kinds.get(memory_id)
        if kinds & documents.TURN or documents.speaker(content) is None or documents.speaker(following) is None:
            return
        self._answer_kinds[memory_id] = kinds | documents.TURN
        found = self._entities.get(memory_id, frozenset()) | documents.entities({}, (), True, content)
        self._entities[memory_id] = self._entity_sets.setdefault(found, found)

    def _purge(self) -> None:
        started = time.perf_counter()
        before, after = self._store.purge()
        log.info(
            "database rewritten without forgotten text: %d -> %d bytes in %.2f s",
            before,
            after,
            time.perf_counter() - started,
        )

    def _wait_ready(self) -> VectorIndex:
        if not self._ready.wait(WARM_UP_TIMEOUT_S):
            raise HebbianMemoryError("The memory is still starting up (loading the model). Try again shortly.")
        if self._warm_up_error is not None:
            raise self._warm_up_error
        assert self._index is not None
        return self._index

    def flush(self, force: bool = False) -> None:
        """Record buffered access events; save the vector index if enough changes or time have accumulated
        (or always, with ``force``)."""
        self._apply_learning()
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
        self._fresh_sessions.add(session_id)
        return session_id

    def end_session(self, session_id: int) -> None:
        self._store.end_session(session_id, self._clock.now())
        self._apply_learning()
        with self._write_lock:
            self._learning.end_session(session_id)

    # --- remember ----------------------------------------------------------------------------------------

    def remember(
        self,
        content: str,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float = 0.5,
        event_time: str | datetime | None = None,
        session_id: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> RememberResult:
        item = MemoryInput(
            content=content,
            tags=list(tags) if tags is not None else None,
            metadata=dict(metadata or {}),
            importance=importance,
            event_time=event_time.isoformat() if isinstance(event_time, datetime) else event_time,
        )
        return self.remember_many([item], session_id, project)[0]

    def remember_many(
        self,
        items: Sequence[MemoryInput],
        session_id: int | None = None,
        project: str = DEFAULT_PROJECT,
        validate_only: bool = False,
    ) -> list[RememberResult]:
        """Store many memories at once (batched embedding); all are validated first, so one bad item stores none.
        Identical text already stored in the same project is reinforced instead of stored again. With
        ``validate_only``, nothing is stored: the items are only checked (a caller storing in parts)."""
        limits = self._settings.limits
        project = inputs.project(project)
        if not 1 <= len(items) <= limits.max_batch:
            raise InvalidInputError(f"Send between 1 and {limits.max_batch} memories per call, got {len(items)}.")
        prepared = [
            self._prepare(item, limits, f"memory {i + 1}: " if len(items) > 1 else "", "Nothing was stored.")
            for i, item in enumerate(items)
        ]
        if validate_only:
            return []
        index = self._wait_ready()

        writes_seen = self._writes
        stored = self._store.ids_by_hash([p.content_hash for p in prepared], project)
        fresh = list({p.content_hash: p for p in prepared if p.content_hash not in stored}.values())
        # Embedding runs outside the lock: it is the slow part, and concurrent calls may overlap in it.
        vectors = dict(
            zip((p.content_hash for p in fresh), self._embedder.embed([p.content for p in fresh]), strict=True)
        )
        with self._write_lock:
            now = self._clock.now()
            # Look again only if another call stored or forgot memories while we were embedding.
            known = (
                stored
                if self._writes == writes_seen
                else self._store.ids_by_hash([p.content_hash for p in prepared], project)
            )
            new: dict[str, _Prepared] = {}
            for p in prepared:
                if p.content_hash not in known:
                    new.setdefault(p.content_hash, p)
            for digest in new.keys() - vectors.keys():  # a duplicate was forgotten meanwhile
                vectors[digest] = self._embedder.embed([new[digest].content])[0]
            tail = self._tail(session_id)
            learn = self._settings.plasticity.enabled and session_id is not None
            chain = Chain(tail[0] if tail else None, self._settings.plasticity.temporal_weight) if learn else None
            rows = [
                NewMemory(
                    content=p.content,
                    content_hash=p.content_hash,
                    tags=p.tags,
                    metadata=p.metadata,
                    importance=p.importance,
                    event_time=p.event_time or now,
                    embedding=vectors[p.content_hash],
                    embedding_model=self._embedder.model_id,
                    session_id=session_id,
                    project=project,
                )
                for p in new.values()
            ]
            ids = self._store.insert(rows, now, chain)
            self._writes += 1
            if chain is not None and ids:
                self._learning.temporal([*([chain.after] if chain.after is not None else []), *ids], now)
            self._project_counts[project] = self._project_counts.get(project, 0) + len(rows)
            if rows:
                index.add(ids, np.stack([r.embedding for r in rows]))
            for memory_id, row in zip(ids, rows, strict=True):
                self._index_in_episode(memory_id, row, session_id)
            return self._results(prepared, known, dict(zip(new.keys(), ids, strict=True)), session_id, now)

    def _results(
        self,
        prepared: Sequence[_Prepared],
        known: Mapping[str, int],
        created: Mapping[str, int],
        session_id: int | None,
        now: datetime,
    ) -> list[RememberResult]:
        """One result per item; items already stored (or repeated in the batch) reinforce their memory."""
        results: list[RememberResult] = []
        reinforced: list[int] = []
        answered: set[int] = set()
        for p in prepared:
            memory_id = known.get(p.content_hash) or created[p.content_hash]
            first = p.content_hash in created and memory_id not in answered
            answered.add(memory_id)
            results.append(RememberResult(id=memory_id, created=first, redacted=list(p.redacted)))
            if not first:
                self._store.reinforce(memory_id, p.tags, p.importance, session_id, now)
                reinforced.append(memory_id)
        if reinforced and self._settings.plasticity.enabled:  # stating a known fact again is using it
            self._learn(self._learning.used(session_id, reinforced, None, now), now)
        return results

    def _learn(self, pairs: list[Pair], now: datetime) -> None:
        self._learning.strengthen(self._store, pairs, now)

    def _apply_learning(self) -> None:
        """Write what recalls taught (co-access pairs, access events); kept off the recall path."""
        with self._write_lock:
            self._learn(self._learning.take_pending(), self._clock.now())
            self._store.record_events(self._learning.take_events())

    def _tail(self, session_id: int | None) -> tuple[int, str] | None:
        """The last memory of a session, where its episode continues (from the database for a session that
        a previous owner process started)."""
        if session_id is None:
            return None
        if session_id not in self._episode_tail and session_id not in self._fresh_sessions:
            self._fresh_sessions.add(session_id)
            last = self._store.last_of_session(session_id, 2**62)
            if last is not None:
                self._episode_tail[session_id] = last
        return self._episode_tail.get(session_id)

    def _prepare(self, item: MemoryInput, limits: LimitSettings, where: str, outcome: str) -> _Prepared:
        """Validate, then redact secrets (before the text is hashed, stored or embedded). A refusal starts with
        ``where`` and ends with ``outcome`` (what the call stored: nothing)."""
        try:
            text = inputs.text(item.content, "content", limits.max_content_chars)
            metadata = inputs.metadata(item.metadata, limits)
            clean = self._redactor.text(text)
            clean_metadata, metadata_kinds = self._redactor.json(metadata)
            return _Prepared(
                content=clean.text,
                content_hash=inputs.content_hash(clean.text),
                tags=inputs.tags(item.tags, limits),
                metadata=clean_metadata,
                importance=inputs.unit_interval(item.importance, "importance"),
                event_time=inputs.when(item.event_time, "event_time"),
                redacted=tuple(dict.fromkeys(clean.kinds + metadata_kinds)),
            )
        except InvalidInputError as e:
            raise InvalidInputError(f"{where}{e} {outcome}") from e

    def _index_in_episode(self, memory_id: int, row: NewMemory, session_id: int | None) -> None:
        """Keyword-index a new memory with the previous one of its session as context, and vice versa."""
        previous = self._episode_tail.get(session_id) if session_id is not None else None
        doc = DocumentRow(
            memory_id,
            row.content,
            row.event_time,
            row.metadata,
            previous[1] if previous else None,
            None,
            previous[0] if previous else None,
        )
        self._index_documents([doc])
        if previous is not None:
            if documents.NEXT in self._fields:
                self._lexical.fill_field(previous[0], documents.NEXT, row.content)
            self._mark_turn(previous[0], previous[1], row.content)
        if session_id is not None:
            self._episode_tail[session_id] = (memory_id, row.content)

    # --- recall ------------------------------------------------------------------------------------------

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
    ) -> RecallResult:
        """Best memories for ``query`` in ``project`` (None: in every project) whose relevance reaches
        ``min_relevance`` (default: recall.min_relevance)."""
        limits, cfg = self._settings.limits, self._settings.recall
        text = inputs.text(query, "query", limits.max_query_chars)
        top_k = inputs.count(cfg.default_k if k is None else k, "k", limits.max_k)
        budget = None if token_budget is None else inputs.count(token_budget, "token_budget", MAX_TOKEN_BUDGET)
        floor = cfg.min_relevance if min_relevance is None else inputs.unit_interval(min_relevance, "min_relevance")
        wanted_tags = inputs.tags(tags, limits)
        start, end = inputs.when(since, "since"), inputs.when(until, "until")
        if start and end and start > end:
            raise InvalidInputError("since is after until, so nothing can match. Swap them or widen the range.")
        within = None if project is None else inputs.project(project)
        index = self._wait_ready()
        query_vector = self._embedder.embed([text])
        with self._write_lock:
            filters = Filters(wanted_tags, start, end, self._project_filter(within))
            asked = self._ranker.query(text, query_vector[0])
            ranked = self._ranker.rank(index, asked, top_k, filters, keep_all=budget is not None)
            if ranked is None:
                return RecallResult(hits=[], note=NOTHING_STORED)
            found = ranked.found
            order = [i for i in ranked.order if ranked.relevance[i] >= floor]
            if not order:
                best = max(float(ranked.relevance[i]) for i in ranked.order)
                return RecallResult(hits=[], note=nothing_relevant(floor, best))
            rows = self._store.get([found.ids[i] for i in order])
            if budget is not None:
                order = ranking.pack(order, [estimate_tokens(rows[found.ids[i]].content) for i in order], budget, top_k)
            shown = ranking.within(order, [len(rows[found.ids[i]].content) for i in order], limits.max_result_chars)
            truncated, order = len(shown) < len(order), shown
            chosen = [found.ids[i] for i in order]
            if self._settings.plasticity.enabled:
                self._learning.recalled(session_id, chosen, self._clock.now())
        hits = [
            RecallHit(
                id=memory_id,
                content=rows[memory_id].content,
                tags=rows[memory_id].tags,
                metadata=rows[memory_id].metadata,
                score=round(float(ranked.fused[i]), 6),
                relevance=round(float(ranked.relevance[i]), 4),
                parts=ScoreParts(
                    dense=round(float(ranked.dense[i]), 6),
                    lexical=round(float(ranked.lexical[i]), 6),
                    cosine=round(float(found.cosine[i]), 6),
                ),
                created_at=rows[memory_id].created_at,
                event_time=rows[memory_id].event_time,
                reason="direct" if i < ranked.direct else "linked",
                via=_via(ranked.reached.get(memory_id)),
            )
            for i, memory_id in zip(order, chosen, strict=True)
            if memory_id in rows
        ]
        return RecallResult(hits=hits, tokens=sum(estimate_tokens(h.content) for h in hits), truncated=truncated)

    def _project_filter(self, project: str | None) -> str | None:
        """The project to filter on, or None when no filter is needed (every memory is in it)."""
        if project is None or self._project_counts.get(project, 0) == sum(self._project_counts.values()) > 0:
            return None
        return project

    # --- associate ---------------------------------------------------------------------------------------

    def associate(
        self,
        source_id: int,
        target_ids: Sequence[int],
        strength: float | None = None,
        session_id: int | None = None,
    ) -> AssociateResult:
        limits = self._settings.limits
        targets = inputs.ids(target_ids, "target_ids", limits.max_ids)
        (source,) = inputs.ids([source_id], "source_id", 1)
        if not targets:
            raise InvalidInputError("target_ids is empty. Name at least one memory id to link the source to.")
        if source in targets:
            raise InvalidInputError("A memory cannot be linked to itself. Remove source_id from target_ids.")
        weight = inputs.unit_interval(
            self._settings.associate.default_strength if strength is None else strength, "strength", allow_zero=False
        )
        self._wait_ready()
        with self._write_lock:
            missing = self._store.missing([source, *targets])
            if missing:
                raise MemoryNotFoundError(missing)
            now = self._clock.now()
            pairs = [pair(source, target) for target in targets]
            existing = self._store.links_between(pairs)
            links = [self._explicit(existing.get(p), p, weight, now) for p in pairs]
            events = [(m, session_id, "linked", now) for m in (source, *targets)]
            self._store.save_links(links, events=events)
            if self._settings.plasticity.enabled:
                self._learning.saved(links)
                used = self._learning.used(session_id, [source, *targets], None, now)
                self._learn([p for p in used if p not in set(pairs)], now)  # those were strengthened just now
        return AssociateResult(
            links=[
                Association(
                    source_id=source,
                    target_id=target,
                    weight=round(link.weight, 6),
                    tier=link.tier,
                    kind="explicit",
                    created=p not in existing,
                )
                for target, p, link in zip(targets, pairs, links, strict=True)
            ]
        )

    def _explicit(self, old: Link | None, ends: Pair, strength: float, now: datetime) -> Link:
        """An explicit link made or strengthened: w <- w + s(1 - w), from its weight decayed to now; explicit
        links start in the episodic tier (they decay slower than working links)."""
        if old is None:
            return Link(*ends, strength, plasticity.EPISODIC, "explicit", 1, now, now, now)
        current = plasticity.decayed(old.weight, old.tier, now - old.updated_at, self._settings.plasticity)
        weight = min(1.0, current + strength * (1.0 - current))
        tier = max(old.tier, plasticity.EPISODIC)
        return Link(*ends, weight, tier, "explicit", old.co_access_count + 1, old.created_at, now, now)

    # --- plasticity --------------------------------------------------------------------------------------

    def consolidate(self) -> ConsolidateResult:
        """One consolidation pass now: decay, tiers, pruning, replay (see maintenance)."""
        self._wait_ready()
        self._apply_learning()
        with self._write_lock:
            now = self._clock.now()
            self._learning.watch()
        # The reading and the arithmetic (seconds at 100k memories) run without the write lock, so calls go on;
        # only the writes take it, and they skip whatever changed in the meantime.
        try:
            plan = maintenance.plan(
                self._store.all_links(), self._store.memory_states(), now, self._settings.plasticity
            )
            with self._write_lock:  # one hold: nothing can change between reading the changes and writing
                touched, gone = self._learning.changes()
                report = maintenance.apply(plan, self._store, self._learning, touched, gone)
            maintenance.apply_memories(plan, self._store)
            self._store.set_meta(_LAST_PASS_META_KEY, now.isoformat())
            # The graph takes the decayed weights in chunks, so calls wait milliseconds, not the whole refresh;
            # links written since the snapshot (including by apply) keep their newer weights.
            for start in range(0, len(plan.kept), GRAPH_REFRESH_CHUNK):
                with self._write_lock:
                    fresh = maintenance.stale_filter(*self._learning.changes())
                    self._learning.refresh(filter(fresh, plan.kept[start : start + GRAPH_REFRESH_CHUNK]))
        finally:
            with self._write_lock:
                self._learning.unwatch()
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

    def stats(self) -> StatsResult:
        index = self._wait_ready()
        with self._write_lock:
            counts = self._store.counts()
            last = self._store.get_meta(_LAST_PASS_META_KEY)
            projects = dict(self._project_counts)
            vectors, keywords = len(index), len(self._lexical)
        return StatsResult(
            memories=sum(projects.values()),
            memories_by_tier=counts["memories_by_tier"],
            links=sum(counts["links_by_tier"].values()),
            links_by_tier=counts["links_by_tier"],
            links_by_kind=counts["links_by_kind"],
            projects=projects,
            last_consolidation=datetime.fromisoformat(last) if last else None,
            vector_index=vectors,
            keyword_index=keywords,
        )

    def links(self, memory_id: int) -> list[tuple[int, float]]:
        """(neighbour id, weight now) of every stored link of a memory."""
        now = self._clock.now()
        return [
            (
                link.target_id if link.source_id == memory_id else link.source_id,
                plasticity.decayed(link.weight, link.tier, now - link.updated_at, self._settings.plasticity),
            )
            for link in self._store.links_of(memory_id)
        ]

    def get(self, ids: Sequence[int]) -> list[MemoryView]:
        """Stored memories by id, in the order asked; unknown ids raise MemoryNotFoundError."""
        wanted = inputs.ids(ids, "ids", self._settings.limits.max_ids)
        self._wait_ready()
        rows = self._store.get(wanted)
        if len(rows) < len(wanted):
            raise MemoryNotFoundError(set(wanted) - rows.keys())
        return [MemoryView.model_validate(rows[i], from_attributes=True) for i in wanted]

    def recent(self, limit: int, project: str = DEFAULT_PROJECT) -> list[MemoryView]:
        """The newest memories of ``project``, newest first."""
        count = inputs.count(limit, "limit", self._settings.limits.max_k)
        self._wait_ready()
        ids = self._store.recent(count, inputs.project(project))
        return self.get(ids) if ids else []

    # --- export and import ------------------------------------------------------------------------------

    def export(self, path: Path) -> ExportResult:
        """Every session, memory and link to ``path`` (JSON lines), from one consistent snapshot: an online
        backup, taken while writers carry on."""
        self._wait_ready()
        self._apply_learning()  # co-access pairs waiting for the flush loop are part of what was learned
        return portability.export(self._store, path, self._clock.now(), self._embedder.model_id)

    def import_sessions(self, records: Sequence[SessionRecord]) -> ImportResult:
        self._wait_ready()
        rows = [r.model_dump(exclude={"type"}) for r in records]
        for n, (r, row) in enumerate(zip(records, rows, strict=True), start=1):
            where = f"line {r.line}: " if r.line is not None else f"session {n} of this batch: "
            row["project"] = row["project"] and _in_record(inputs.project, row["project"], where, "Nothing was stored.")
        with self._write_lock:
            ids, matched = self._store.import_sessions(rows)
        return ImportResult(ids=ids, created=len(ids) - matched, duplicates=matched)

    def import_memories(self, records: Sequence[MemoryRecord]) -> ImportResult:
        """Memories from an export (or any such file): validated and redacted like remember's; a memory whose
        text is already stored in its project is not stored again (its id is returned). Stored embeddings of
        the model in use are kept, others are computed."""
        limits = self._settings.limits
        outcome = f"None of this batch's {len(records)} memories were stored." if len(records) > 1 else "Not stored."
        prepared: list[tuple[str, _Prepared]] = []
        for n, r in enumerate(records, start=1):
            item = MemoryInput(content=r.content, tags=r.tags, metadata=r.metadata, importance=r.importance)
            where = f"line {r.line}: " if r.line is not None else f"memory {n} of this batch: "
            project = _in_record(inputs.project, r.project, where, outcome)
            prepared.append((project, self._prepare(item, limits, where, outcome)))
        index = self._wait_ready()
        model, dim = self._embedder.model_id, self._embedder.dim
        vectors = [r.vector(model, dim) for r in records]
        missing = [i for i, v in enumerate(vectors) if v is None]
        for i, v in zip(missing, self._embedder.embed([prepared[i][1].content for i in missing]), strict=True):
            vectors[i] = v
        with self._write_lock:
            now = self._clock.now()
            known: dict[tuple[str, str], int] = {}
            for project in {project for project, _ in prepared}:
                hashes = [p.content_hash for q, p in prepared if q == project]
                known |= {(project, h): i for h, i in self._store.ids_by_hash(hashes, project).items()}
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            for r, (project, p), vector in zip(records, prepared, vectors, strict=True):
                key = (project, p.content_hash)
                if key not in known and key not in rows:
                    rows[key] = _memory_row(r, project, p, vector, model, now)
            ids = dict(zip(rows, self._store.import_memories(list(rows.values())), strict=True))
            self._writes += 1
            if ids:
                index.add(list(ids.values()), np.stack([row["vector"] for row in rows.values()]))
                for project, _ in ids:
                    self._project_counts[project] = self._project_counts.get(project, 0) + 1
                self._index_documents(self._store.documents_around(list(ids.values())))
        all_ids = [known.get((q, p.content_hash)) or ids[(q, p.content_hash)] for q, p in prepared]
        return ImportResult(
            ids=all_ids,
            created=len(ids),
            duplicates=len(records) - len(ids),
            redacted=sum(1 for _, p in prepared if p.redacted),
        )

    def import_links(self, records: Sequence[LinkRecord]) -> ImportResult:
        """Links whose ends are stored (ids already translated); an existing link is left as it is."""
        self._wait_ready()
        rows = [r.model_dump(exclude={"type"}) for r in records]
        with self._write_lock:
            added = self._store.import_links(rows)
            if self._settings.plasticity.enabled:
                self._learning.saved(Link(**row) for row in rows if (row["source_id"], row["target_id"]) in added)
        return ImportResult(ids=[], created=len(added), duplicates=len(rows) - len(added))

    # --- forget ------------------------------------------------------------------------------------------

    def forget(
        self,
        ids: Sequence[int] | None = None,
        tags: Sequence[str] | None = None,
        before: str | datetime | None = None,
        project: str | None = DEFAULT_PROJECT,
    ) -> ForgetResult:
        """Delete every memory matching all given criteria, from the database and both indexes. Ids name
        memories in any project; tags and before select only within ``project`` (None: in every project)."""
        limits = self._settings.limits
        id_list = inputs.ids(ids, "ids", limits.max_ids) if ids else None
        tag_list = inputs.tags(tags, limits)
        cutoff = inputs.when(before, "before")
        within = None if project is None or id_list is not None else inputs.project(project)
        if id_list is None and not tag_list and cutoff is None:
            raise InvalidInputError(
                "Say what to forget: give ids, tags (memories carrying all of them) or before (an ISO date); "
                "when several are given, only memories matching all of them are forgotten."
            )
        index = self._wait_ready()
        with self._write_lock:
            if id_list is not None:
                missing = self._store.missing(id_list)
                if missing:
                    raise MemoryNotFoundError(missing)
            doomed = self._store.select_for_forget(id_list, tag_list, cutoff, within)
            episodes = self._store.sessions_of(doomed)
            purge = self._settings.privacy.purge_after_forget and bool(doomed)
            self._store.delete(doomed, purge_due=purge)
            self._writes += 1
            index.remove(doomed)
            if doomed:
                self._project_counts = self._store.project_counts()
            self._learning.forget(doomed)
            for memory_id in doomed:
                self._lexical.remove(memory_id)
                self._entities.pop(memory_id, None)
                self._answer_kinds.pop(memory_id)
                self._previous_of.pop(memory_id)
            # Neighbours held the forgotten text as context: index their episodes again without it.
            survivors = self._store.documents(sorted(episodes)) if episodes else []
            self._index_documents(survivors)
            gone = set(doomed)
            for session_id, (tail_id, _) in list(self._episode_tail.items()):
                if tail_id in gone:  # the next memory of that episode starts without a "previous" context
                    del self._episode_tail[session_id]
            if doomed:
                index.save()  # the file on disk must not keep a forgotten memory's vector
            if purge:
                self._purge()
        return ForgetResult(forgotten=len(doomed), ids=doomed[:1000])


def _in_record(check: Callable[[str], str], value: str, where: str, outcome: str) -> str:
    """``check(value)``, its refusal naming the record and what was stored."""
    try:
        return check(value)
    except InvalidInputError as e:
        raise InvalidInputError(f"{where}{e} {outcome}") from e


def _memory_row(
    r: MemoryRecord, project: str, p: _Prepared, vector: Vectors | None, model: str, now: datetime
) -> dict[str, Any]:
    """A whole memory row from an imported record; times it lacks are now."""
    assert vector is not None
    created = r.created_at or now
    return {
        "id": r.id,
        "project": project,
        "content": p.content,
        "content_hash": p.content_hash,
        "tags": list(p.tags),
        "metadata": p.metadata,
        "importance": p.importance,
        "created_at": created,
        "updated_at": r.updated_at or created,
        "event_time": r.event_time or created,
        "last_accessed_at": r.last_accessed_at or created,
        "access_count": r.access_count,
        "strength": r.strength,
        "tier": r.tier,
        "session_id": r.session_id,
        "replay_count": r.replay_count,
        "last_replayed_at": r.last_replayed_at,
        "embedding_model": model,
        "embedding": np.asarray(vector, dtype="<f4").tobytes(),
        "vector": vector,
    }


def _via(reached: plasticity.Reached | None) -> LinkVia | None:
    if reached is None:
        return None
    return LinkVia(memory_id=reached.source, kind=reached.kind, weight=round(reached.weight, 6), hops=reached.hops)  # pyright: ignore[reportArgumentType] -- kinds come from the schema
