"""What recall's ranking reads, behind one Protocol: dense and keyword candidates, vectors by id, the per-memory
features ranking weighs, the link graph's neighbours, and the filters; plus the notifications that keep it
current. ``CacheSource`` is the in-process implementation over the caches the service keeps beside the database
(the usearch index, the Catalog's keyword index and maps, the link graph); a backend with its own vector and
text indexes can supply its own and ignore the notifications.

A source is read by many recalls at once and changed by one writer at a time; the service keeps them apart (its
readers-writer lock: a recall's reads all see one state of every cache, see service/locking.py)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.learning.graph import Learning
from hebbian_memory.retrieval import documents
from hebbian_memory.retrieval.catalog import Catalog
from hebbian_memory.retrieval.vectors import VectorIndex
from hebbian_memory.storage import DocumentRow, Filters, MemoryRows, NewMemory

__all__ = ["CacheSource", "Features", "Floats", "RecallSource"]

Floats = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True, slots=True)
class Features:
    """What ranking weighs of one memory besides its vector and its words."""

    kinds: int  # the kinds of answer its text holds (documents.TIME, ...), TURN for a dialog turn, QUESTION
    entities: frozenset[str]  # speakers and other names, for the entity boost
    previous: int | None  # the memory before it in its episode


class RecallSource(Protocol):
    """What ranking reads. Ids are memory ids; every method reads, except the two notifications."""

    def dense(self, vector: Floats, limit: int) -> list[int]:
        """The ``limit`` memories nearest ``vector`` (approximately), best first."""
        ...

    def keyword(self, text: str, limit: int, only: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """The best ``limit`` (id, keyword score) for ``text``, best first; ``only`` restricts the candidates."""
        ...

    def keyword_scale(self, text: str) -> float:
        """What a memory holding each of the words of ``text`` would score: keyword scores divided by it are 0-1."""
        ...

    def vectors(self, ids: Sequence[int]) -> Vectors:
        """The vectors of ``ids`` (all must have one), as float32 rows in order."""
        ...

    def with_vectors(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that have a vector."""
        ...

    def held(self) -> set[int]:
        """Every memory that has a vector here."""
        ...

    def features(self, ids: Sequence[int]) -> list[Features]:
        """Each memory's features, in order (an unknown id has none: no kinds, entities or previous)."""
        ...

    def texts(self, ids: Sequence[int]) -> dict[int, str]:
        """The words a memory is keyword-indexed by (text, date in words, chosen metadata), for those stored."""
        ...

    def neighbours(self, memory_id: int) -> list[tuple[int, float, str]]:
        """(neighbour, weight, kind) of each learned or explicit link of a memory."""
        ...

    def allowed(self, filters: Filters, limit: int) -> list[int] | None:
        """Every memory matching ``filters`` when they are at most ``limit``; None when there are more."""
        ...

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        """Those of ``ids`` that match ``filters``."""
        ...

    def added(self, ids: Sequence[int], vectors: Vectors) -> None:
        """Memories were stored (or imported), with their vectors."""
        ...

    def continued(self, session_id: int | None, ids: Sequence[int], memories: Sequence[NewMemory]) -> None:
        """Remembered memories, in order, continue the episode of ``session_id`` (None: no session): each is
        keyword-indexed with the memory before it as context, and becomes that memory's next."""
        ...

    def indexed(self, docs: Sequence[DocumentRow]) -> None:
        """These memories' keyword documents, whole with their episode (imported memories, and the neighbours of
        forgotten ones): index them, replacing what was indexed for them."""
        ...

    def removed(self, ids: Sequence[int]) -> None:
        """Memories were forgotten."""
        ...


class CacheSource:
    """The in-process source: the vector index (from warm-up on, see :meth:`use`), the Catalog (keyword index,
    entities, answer kinds, previous memory), the link graph, and the store for filters and texts."""

    def __init__(self, store: MemoryRows, catalog: Catalog, learning: Learning, metadata_keys: Sequence[str]) -> None:
        self._store = store
        self._catalog = catalog
        self._learning = learning
        self._metadata_keys = metadata_keys
        self._index: VectorIndex | None = None

    def use(self, index: VectorIndex) -> None:
        """The vector index warm-up opened (recall waits for warm-up, so it is there before any read)."""
        self._index = index

    @property
    def index(self) -> VectorIndex:
        assert self._index is not None, "read before warm-up opened the vector index"
        return self._index

    def dense(self, vector: Floats, limit: int) -> list[int]:
        return [i for i, _ in self.index.search(vector, limit)]

    def keyword(self, text: str, limit: int, only: Sequence[int] | None = None) -> list[tuple[int, float]]:
        return self._catalog.lexical.search(text, limit, only=only)

    def keyword_scale(self, text: str) -> float:
        return self._catalog.lexical.full_score(text)

    def vectors(self, ids: Sequence[int]) -> Vectors:
        return self.index.vectors(ids)

    def with_vectors(self, ids: Sequence[int]) -> set[int]:
        index = self.index
        return {i for i in ids if i in index}

    def held(self) -> set[int]:
        return set(self.index.ids().tolist())

    def features(self, ids: Sequence[int]) -> list[Features]:
        catalog = self._catalog
        kinds, entities, previous = catalog.answer_kinds, catalog.entities, catalog.previous_of
        empty: frozenset[str] = frozenset()
        return [Features(kinds.get(i), entities.get(i, empty), previous.get(i)) for i in ids]

    def texts(self, ids: Sequence[int]) -> dict[int, str]:
        keys = self._metadata_keys
        return {
            memory_id: " ".join(
                (
                    row.content,
                    documents.date_words(row.event_time, row.content),
                    documents.metadata_text(row.metadata, keys),
                )
            )
            for memory_id, row in self._store.get(ids).items()
        }

    def neighbours(self, memory_id: int) -> list[tuple[int, float, str]]:
        return self._learning.neighbours(memory_id)

    def allowed(self, filters: Filters, limit: int) -> list[int] | None:
        return self._store.filter_ids(filters, limit)

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        return self._store.matching(ids, filters)

    def added(self, ids: Sequence[int], vectors: Vectors) -> None:
        if ids:
            self.index.add(ids, vectors)

    def continued(self, session_id: int | None, ids: Sequence[int], memories: Sequence[NewMemory]) -> None:
        for memory_id, memory in zip(ids, memories, strict=True):
            self._catalog.index_in_episode(memory_id, memory, session_id)

    def indexed(self, docs: Sequence[DocumentRow]) -> None:
        self._catalog.index_documents(docs)

    def removed(self, ids: Sequence[int]) -> None:
        self.index.remove(ids)
        self._catalog.forget(ids)
