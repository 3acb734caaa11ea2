"""MemoryService: remember, recall, associate, forget. Synchronous and thread-safe; never imports mcp.

Writes go to DuckDB first (the truth), then to the vector and lexical indexes (caches). The indexes are
made ready by :meth:`MemoryService.warm_up` (model load, re-embedding after a model change, index
reconciliation); every call waits for it, so a memory is recallable the moment ``remember`` returns.
"""

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from hebbian_memory import inputs
from hebbian_memory.clock import Clock
from hebbian_memory.config import Settings
from hebbian_memory.embedding import Embedder, Vectors
from hebbian_memory.errors import HebbianMemoryError, InvalidInputError, MemoryNotFoundError
from hebbian_memory.index import VectorIndex
from hebbian_memory.lexical import BM25Index, LexicalIndex
from hebbian_memory.models import (
    AssociateResult,
    Association,
    ForgetResult,
    RecallHit,
    RecallResult,
    RememberResult,
    ScoreParts,
)
from hebbian_memory.storage import NewMemory, Store

log = logging.getLogger(__name__)

WARM_UP_TIMEOUT_S = 600.0
_MODEL_META_KEY = "embedding_model"


@dataclass(frozen=True, slots=True)
class _Candidates:
    ids: list[int]
    cosine: np.ndarray[Any, np.dtype[np.float32]]
    lexical: np.ndarray[Any, np.dtype[np.float32]]


class MemoryService:
    """The memory operations, over one Store, one vector index and one lexical index."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._lexical: LexicalIndex = BM25Index()
        self._index: VectorIndex | None = None
        self._write_lock = threading.RLock()
        self._ready = threading.Event()
        self._warm_up_error: HebbianMemoryError | None = None
        self._last_save = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the model and make both indexes agree with the database. Blocking; run it in a thread."""
        try:
            started = time.perf_counter()
            self._embedder.load()
            self._reembed_if_model_changed()
            index = VectorIndex(
                self._settings.data_dir / "vectors.usearch",
                self._embedder.model_id,
                self._embedder.dim,
                self._settings.index,
            )
            outcome = index.open(self._store.all_ids(), lambda ids: self._store.embeddings(ids, self._embedder.dim))
            self._index = index
            if outcome != "loaded":
                index.save()
            for batch in self._store.iter_contents():
                for memory_id, content in batch:
                    self._lexical.add(memory_id, {"content": content})
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

    def _reembed_if_model_changed(self) -> None:
        model_id = self._embedder.model_id
        stale = self._store.models_in_use() - {model_id}
        if stale:
            log.warning("embedding model changed (%s -> %s): re-embedding every memory", sorted(stale), model_id)
            for batch in self._store.iter_contents(batch=1000):
                vectors = self._embedder.embed([content for _, content in batch])
                self._store.replace_embeddings({mid: v for (mid, _), v in zip(batch, vectors, strict=True)}, model_id)
        self._store.set_meta(_MODEL_META_KEY, model_id)

    def _wait_ready(self) -> VectorIndex:
        if not self._ready.wait(WARM_UP_TIMEOUT_S):
            raise HebbianMemoryError("The memory is still starting up (loading the model). Try again shortly.")
        if self._warm_up_error is not None:
            raise self._warm_up_error
        assert self._index is not None
        return self._index

    def flush(self, force: bool = False) -> None:
        """Save the vector index if enough changes or time have accumulated (or always, with ``force``)."""
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
        self._ready.wait(WARM_UP_TIMEOUT_S)
        try:
            self.flush(force=True)
        finally:
            self._store.close()

    def start_session(self, transport: str) -> int:
        return self._store.start_session(transport, self._clock.now())

    def end_session(self, session_id: int) -> None:
        self._store.end_session(session_id, self._clock.now())

    # --- remember ----------------------------------------------------------------------------------------

    def remember(
        self,
        content: str,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float = 0.5,
        event_time: str | datetime | None = None,
        session_id: int | None = None,
    ) -> RememberResult:
        limits = self._settings.limits
        text = inputs.text(content, "content", limits.max_content_chars)
        clean_tags = inputs.tags(tags, limits)
        meta = inputs.metadata(metadata, limits)
        weight = inputs.unit_interval(importance, "importance")
        happened = inputs.when(event_time, "event_time")
        digest = inputs.content_hash(text)
        index = self._wait_ready()

        vector: Vectors | None = None
        if self._store.id_by_hash(digest) is None:
            vector = self._embedder.embed([text])  # outside the lock: the slow part runs concurrently
        with self._write_lock:
            existing = self._store.id_by_hash(digest)
            now = self._clock.now()
            if existing is not None:
                self._store.reinforce(existing, clean_tags, weight, session_id, now)
                return RememberResult(id=existing, created=False)
            if vector is None:  # the duplicate was forgotten meanwhile
                vector = self._embedder.embed([text])
            memory_id = self._store.insert(
                NewMemory(
                    content=text,
                    content_hash=digest,
                    tags=clean_tags,
                    metadata=meta,
                    importance=weight,
                    event_time=happened or now,
                    embedding=vector[0],
                    embedding_model=self._embedder.model_id,
                    session_id=session_id,
                ),
                now,
            )
            index.add([memory_id], vector)
            self._lexical.add(memory_id, {"content": text})
        return RememberResult(id=memory_id, created=True)

    # --- recall ------------------------------------------------------------------------------------------

    def recall(
        self,
        query: str,
        k: int | None = None,
        tags: Sequence[str] | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> RecallResult:
        limits, cfg = self._settings.limits, self._settings.recall
        text = inputs.text(query, "query", limits.max_query_chars)
        top_k = inputs.count(cfg.default_k if k is None else k, "k", limits.max_k)
        wanted_tags = inputs.tags(tags, limits)
        start, end = inputs.when(since, "since"), inputs.when(until, "until")
        if start and end and start > end:
            raise InvalidInputError("since is after until, so nothing can match. Swap them or widen the range.")
        index = self._wait_ready()
        query_vector = self._embedder.embed([text])
        with self._write_lock:
            found = self._candidates(index, text, query_vector, max(cfg.candidates, top_k), wanted_tags, start, end)
            if not found.ids:
                return RecallResult(hits=[])
            dense, lexical = _min_max(found.cosine), _min_max(found.lexical)
            fused = cfg.dense_weight * dense + (1.0 - cfg.dense_weight) * lexical
            order: list[int] = np.argsort(-fused, kind="stable")[:top_k].tolist()
            chosen = [found.ids[i] for i in order]
            rows = self._store.get(chosen)
        hits = [
            RecallHit(
                id=memory_id,
                content=rows[memory_id].content,
                tags=rows[memory_id].tags,
                metadata=rows[memory_id].metadata,
                score=round(float(fused[i]), 6),
                parts=ScoreParts(
                    dense=round(float(dense[i]), 6),
                    lexical=round(float(lexical[i]), 6),
                    cosine=round(float(found.cosine[i]), 6),
                ),
                created_at=rows[memory_id].created_at,
                event_time=rows[memory_id].event_time,
            )
            for i, memory_id in zip(order, chosen, strict=True)
            if memory_id in rows
        ]
        return RecallResult(hits=hits)

    def _candidates(
        self,
        index: VectorIndex,
        query: str,
        query_vector: Vectors,
        n: int,
        tags: Sequence[str],
        since: datetime | None,
        until: datetime | None,
    ) -> _Candidates:
        """The union of dense and lexical candidates, each scored exactly by both measures."""
        filtered = bool(tags) or since is not None or until is not None
        allowed = (
            self._store.filter_ids(tags, since, until, self._settings.recall.exact_filter_limit) if filtered else None
        )
        if allowed is not None:
            # A selective filter: score every allowed memory exactly, so the filter can never hide a match.
            if not allowed:
                return _Candidates([], np.zeros(0, np.float32), np.zeros(0, np.float32))
            cosines = index.vectors(allowed) @ query_vector[0]
            best: list[int] = np.argsort(-cosines)[:n].tolist()
            dense_ids = [allowed[i] for i in best]
            lexical_ids = [i for i, _ in self._lexical.search(query, n, only=allowed)]
        else:
            over = n * 10 if filtered else n
            dense_ids = [i for i, _ in index.search(query_vector[0], over)]
            lexical_ids = [i for i, _ in self._lexical.search(query, over)]
            if filtered:
                keep = self._store.matching(dense_ids + lexical_ids, tags, since, until)
                dense_ids = [i for i in dense_ids if i in keep][:n]
                lexical_ids = [i for i in lexical_ids if i in keep][:n]
        ids = list(dict.fromkeys(dense_ids + lexical_ids))
        if not ids:
            return _Candidates([], np.zeros(0, np.float32), np.zeros(0, np.float32))
        cosine = (index.vectors(ids) @ query_vector[0]).astype(np.float32)
        bm25 = dict(self._lexical.search(query, len(ids), only=ids))
        lexical = np.asarray([bm25.get(i, 0.0) for i in ids], dtype=np.float32)
        return _Candidates(ids, cosine, lexical)

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
            links = self._store.strengthen_links(source, targets, weight, session_id, self._clock.now())
        return AssociateResult(
            links=[
                Association(
                    source_id=link.source_id,
                    target_id=link.target_id,
                    weight=round(link.weight, 6),
                    tier=link.tier,
                    kind=link.kind,  # pyright: ignore[reportArgumentType] -- the schema only holds valid kinds
                    created=link.created,
                )
                for link in links
            ]
        )

    def links(self, memory_id: int) -> list[tuple[int, float]]:
        """(neighbour id, weight) of every link of a memory."""
        return self._store.links_of(memory_id)

    # --- forget ------------------------------------------------------------------------------------------

    def forget(
        self,
        ids: Sequence[int] | None = None,
        tags: Sequence[str] | None = None,
        before: str | datetime | None = None,
    ) -> ForgetResult:
        """Delete every memory matching all given criteria, from the database and both indexes."""
        limits = self._settings.limits
        id_list = inputs.ids(ids, "ids", limits.max_ids) if ids else None
        tag_list = inputs.tags(tags, limits)
        cutoff = inputs.when(before, "before")
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
            doomed = self._store.select_for_forget(id_list, tag_list, cutoff)
            self._store.delete(doomed)
            index.remove(doomed)
            for memory_id in doomed:
                self._lexical.remove(memory_id)
            if doomed:
                index.save()  # the file on disk must not keep a forgotten memory's vector
        return ForgetResult(forgotten=len(doomed), ids=doomed[:1000])


def _min_max(values: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Scale to 0..1 within this candidate set; a constant set maps to 1 if positive, else 0."""
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.full_like(values, 1.0 if high > 0 else 0.0)
    return ((values - low) / (high - low)).astype(np.float32)
