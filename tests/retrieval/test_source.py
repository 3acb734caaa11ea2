"""The recall source is the one seam ranking reads through: ranking.py imports no cache or store, and a second
source (brute-force vectors in a dict, its own keyword index, no database) ranks exactly as the service's caches."""

import ast
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.retrieval import documents
from hebbian_memory.retrieval.lexical import BM25Index
from hebbian_memory.retrieval.ranking import Ranker
from hebbian_memory.retrieval.source import Features, Floats
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage import DocumentRow, Filters, NewMemory
from hebbian_memory.storage.duckdb import Store
from tests.helpers import FakeEmbedder

RANKING = Path(__file__).resolve().parents[2] / "server" / "hebbian_memory" / "retrieval" / "ranking.py"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NOTES = [
    "the cat sat on the mat in the kitchen",
    "a dog ran across the park after the ball",
    "we moved to Lisbon in 2019",
    "the kitchen tap has been leaking since March",
    "my sister plays the cello in an orchestra",
    "three cats live next door",
    "the park closes at nine in winter",
]
QUERIES = ["where does the cat sit", "when did we move", "what happens in the park", "how many cats are there"]


def test_ranking_imports_no_store_index_or_cache() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(RANKING.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    reaching = {
        name
        for name in imported
        if name.startswith(("duckdb", "usearch", "hebbian_memory._native", "hebbian_memory.storage."))
        or any(f"retrieval.{cache}" in name for cache in ("lexical", "vectors", "catalog", "idmap"))
    }
    assert reaching == {"hebbian_memory.storage.Filters"}  # a value type, the filters recall asks for


class DictSource:
    """Another source: every vector in a dict (exact search), its own BM25 index, notes only (no episodes)."""

    def __init__(self, settings: Settings, kinds_on: int) -> None:
        self._metadata_keys = settings.lexical.metadata_keys
        self._fields = documents.field_specs(settings.lexical)
        self._kinds_on = kinds_on
        self._keywords = BM25Index(self._fields, k1=settings.lexical.k1)
        self._vectors: dict[int, Vectors] = {}
        self._texts: dict[int, str] = {}

    def store(self, memory_id: int, text: str, vector: Vectors) -> None:
        self.indexed([DocumentRow(memory_id, text, NOW, {}, None, None, None)])
        self.added([memory_id], vector[None, :])

    def dense(self, vector: Floats, limit: int) -> list[int]:
        ids = list(self._vectors)
        cosines = self.vectors(ids) @ vector
        return [ids[i] for i in np.argsort(-cosines, kind="stable")[:limit]]

    def keyword(self, text: str, limit: int, only: Sequence[int] | None = None) -> list[tuple[int, float]]:
        return self._keywords.search(text, limit, only=only)

    def keyword_scale(self, text: str) -> float:
        return self._keywords.full_score(text)

    def vectors(self, ids: Sequence[int]) -> Vectors:
        return np.stack([self._vectors[i] for i in ids]).astype(np.float32)

    def with_vectors(self, ids: Sequence[int]) -> set[int]:
        return set(ids) & self._vectors.keys()

    def held(self) -> set[int]:
        return set(self._vectors)

    def features(self, ids: Sequence[int]) -> list[Features]:
        return [Features(documents.answer_kinds(self._texts[i]) & self._kinds_on, frozenset(), None) for i in ids]

    def texts(self, ids: Sequence[int]) -> dict[int, str]:
        return {i: self._texts[i] for i in ids if i in self._texts}

    def neighbours(self, memory_id: int) -> list[tuple[int, float, str]]:
        return []

    def allowed(self, filters: Filters, limit: int) -> list[int] | None:
        return None

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        return set(ids)

    def added(self, ids: Sequence[int], vectors: Vectors) -> None:
        # Held at the precision the service's vector index holds them (index.dtype: f16), to compare exactly.
        self._vectors.update(zip(ids, vectors.astype(np.float16), strict=True))

    def continued(self, session_id: int | None, ids: Sequence[int], memories: Sequence[NewMemory]) -> None:
        # Notes only: no episode context.
        self.indexed(
            [
                DocumentRow(i, m.content, m.event_time, m.metadata, None, None, None)
                for i, m in zip(ids, memories, strict=True)
            ]
        )

    def indexed(self, docs: Sequence[DocumentRow]) -> None:
        for doc in docs:
            self._keywords.add(doc.id, documents.fields(doc, self._fields, self._metadata_keys))
            self._texts[doc.id] = " ".join((doc.content, documents.date_words(doc.event_time, doc.content), ""))

    def removed(self, ids: Sequence[int]) -> None:
        for memory_id in ids:
            self._vectors.pop(memory_id, None)
            self._keywords.remove(memory_id)


@pytest.fixture
def service(settings: Settings) -> Iterator[MemoryService]:
    clock = ManualClock(NOW)
    svc = MemoryService(settings, Store.open(settings.data_dir / "memory.duckdb", clock.now()), FakeEmbedder(), clock)
    svc.warm_up()
    yield svc
    svc.close()


def test_a_ranker_over_another_source_ranks_exactly_as_over_the_caches(
    service: MemoryService, settings: Settings
) -> None:
    embedder = FakeEmbedder()
    kinds_on = documents.kinds_mask(settings.recall.answer_kinds) | documents.QUESTION
    other = DictSource(settings, kinds_on)
    for text in NOTES:
        other.store(service.remember(text).id, text, embedder.embed([text])[0])
    ranker = Ranker(
        settings.recall,
        settings.plasticity,
        other,
        lambda ids, _query: np.zeros(len(ids), np.float32),
        embedder.embed_together,
    )
    for query in QUERIES:
        expected = [(h.id, h.score, h.relevance) for h in service.recall(query, k=len(NOTES), min_relevance=0).hits]
        ranked = ranker.rank(ranker.query(query, embedder.embed([query])[0]), len(NOTES), Filters(), keep_all=False)
        got = [(h.id, round(h.score, 6), round(h.relevance, 4)) for h in ranked]
        # The same scores in the same order; memories tied (the unrelated, at 0) come in their source's order.
        assert [s for _, s, _ in got] == [s for _, s, _ in expected], query
        assert sorted(got) == sorted(expected), query
