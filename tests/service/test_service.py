"""MemoryService with a deterministic embedder: the scoring and filtering maths, with an injected clock."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.errors import MemoryNotFoundError
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from tests.backends import OpenStore
from tests.helpers import FakeEmbedder

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(settings: Settings, clock: ManualClock, open_store: OpenStore) -> Iterator[MemoryService]:
    store = open_store(settings.data_dir / "memory.duckdb", clock.now())
    svc = MemoryService(settings, store, FakeEmbedder(), clock)
    svc.warm_up()
    yield svc
    svc.close()


def test_times_come_from_the_injected_clock(service: MemoryService, clock: ManualClock) -> None:
    first = service.remember("first note")
    clock.advance(timedelta(days=3))
    second = service.remember("second note")
    hits = {h.id: h for h in service.recall("note", k=5).hits}
    assert hits[first.id].created_at == START
    assert hits[second.id].created_at == START + timedelta(days=3)
    assert hits[second.id].event_time == hits[second.id].created_at


def test_fused_score_is_the_cosine_plus_the_weighted_keyword_share(service: MemoryService, settings: Settings) -> None:
    for text in ["red apples", "green apples and pears", "blue sky", "apples apples apples"]:
        service.remember(text)
    hits = service.recall("apples", k=4, min_relevance=0).hits
    w = settings.recall.keyword_weight
    for hit in hits:
        # Notes, not dialog turns: no boosts; the one-word query leaves no residual to correct the cosine.
        assert hit.parts.dense == pytest.approx(hit.parts.cosine, abs=1e-5)
        assert hit.score == pytest.approx(hit.parts.dense + w * hit.parts.lexical**2, abs=1e-5)
        assert 0.0 <= hit.parts.lexical <= 1.0
        assert 0.0 <= hit.relevance <= 1.0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "sky" not in hits[0].content


def test_a_keyword_share_has_an_absolute_level_a_lone_common_word_is_little(
    service: MemoryService, settings: Settings
) -> None:
    for text in [f"ledger entry {n}" for n in range(8)] + ["the zanzibar quokka ledger audit", "zanzibar quokka"]:
        service.remember(text)
    by_text = {h.content: h for h in service.recall("zanzibar quokka ledger", k=10, min_relevance=0).hits}
    # Min-max scaling would give the best keyword match 1.0 whatever it matched, a lone common word included.
    assert by_text["the zanzibar quokka ledger audit"].parts.lexical == pytest.approx(1.0, abs=0.15)
    assert by_text["zanzibar quokka"].parts.lexical > 0.7
    assert by_text["ledger entry 0"].parts.lexical < 0.2


def test_keyword_weight_moves_the_ranking_between_keyword_and_meaning(
    settings: Settings, clock: ManualClock, open_store: OpenStore
) -> None:
    from dataclasses import replace

    orders: dict[float, list[int]] = {}
    for weight in (0.0, 5.0):
        tuned = replace(settings, recall=replace(settings.recall, keyword_weight=weight, residual_share=0.0))
        store = open_store(settings.data_dir / f"w{weight}.duckdb", clock.now())
        svc = MemoryService(tuned, store, FakeEmbedder(), clock)
        svc.warm_up()
        for text in ["zebra stripes lion tiger bear wolf fox owl", "zebra", "a cat"]:
            svc.remember(text)
        hits = svc.recall("zebra stripes", k=3, min_relevance=0).hits
        orders[weight] = [h.id for h in hits]
        expected = [h.parts.dense + weight * h.parts.lexical**2 for h in hits]  # a note's share counts squared
        assert [h.score for h in hits] == pytest.approx(expected, abs=1e-5)
        svc.close()
    assert orders[5.0][0] == 1, "keywords favour the memory that holds every word of the query"
    assert orders[0.0][0] == 2, "the dense score favours the memory that is mostly the query's words"


def test_restart_rebuilds_the_lexical_index_from_the_database(settings: Settings, clock: ManualClock) -> None:
    # DuckDB only: a restart reopens the file, and nothing may be called on a store after its close().
    store = Store.open(settings.data_dir / "memory.duckdb", clock.now())
    svc = MemoryService(settings, store, FakeEmbedder(), clock)
    svc.warm_up()
    kept = svc.remember("the spare key is under the flower pot")
    svc.close()
    store = Store.open(settings.data_dir / "memory.duckdb", clock.now())
    svc = MemoryService(settings, store, FakeEmbedder(), clock)
    svc.warm_up()
    hits = svc.recall("flower pot", k=1).hits
    svc.close()
    assert hits[0].id == kept.id
    assert hits[0].parts.lexical == 1.0


def test_filters_beyond_the_exact_limit_still_only_return_matches(
    settings: Settings, clock: ManualClock, open_store: OpenStore
) -> None:
    from dataclasses import replace

    tight = replace(settings, recall=replace(settings.recall, exact_filter_limit=5))
    store = open_store(settings.data_dir / "memory.duckdb", clock.now())
    svc = MemoryService(tight, store, FakeEmbedder(), clock)
    svc.warm_up()
    tagged = {svc.remember(f"tagged item {i}", tags=["t"]).id for i in range(10)}
    for i in range(10):
        svc.remember(f"untagged item {i}")
    hits = svc.recall("item", k=20, tags=["t"]).hits
    svc.close()
    assert {h.id for h in hits} == tagged


def test_a_filter_beyond_the_exact_limit_still_fills_k_when_other_memories_match_the_query_better(
    settings: Settings, clock: ManualClock, open_store: OpenStore
) -> None:
    """The candidates the vector index gives first may all fail the filter: the search widens until k match (as
    pgvector's iterative scan does), so a small project in a large store is never cut short."""
    from dataclasses import replace

    tight = replace(settings, recall=replace(settings.recall, exact_filter_limit=5))
    svc = MemoryService(tight, open_store(settings.data_dir / "memory.duckdb", clock.now()), FakeEmbedder(), clock)
    svc.warm_up()
    for start in (0, 1000):  # a large project whose memories all match the query better than the small one's
        svc.remember_many(
            [
                MemoryInput(content=f"release checklist for the payments service, step {i}")
                for i in range(start, start + 1000)
            ]
        )
    mine = svc.remember_many([MemoryInput(content=f"lunch order {i}") for i in range(20)], project="/code/lunch")
    hits = svc.recall("release checklist payments service", k=10, project="/code/lunch", min_relevance=0).hits
    svc.close()
    assert len(hits) == 10
    assert {h.id for h in hits} <= {m.id for m in mine}


def test_forgetting_unknown_ids_changes_nothing(service: MemoryService) -> None:
    kept = service.remember("keep me")
    with pytest.raises(MemoryNotFoundError) as caught:
        service.forget(ids=[kept.id, 777])
    assert caught.value.missing == [777]
    assert [h.id for h in service.recall("keep", k=5).hits] == [kept.id]


def test_remember_many_stores_in_order_dedupes_and_links_the_episode(service: MemoryService) -> None:
    before = service.remember("already stored fact about penguins")
    results = service.remember_many(
        [
            MemoryInput(content="We booked the cabin by the lake"),
            MemoryInput(content="already stored fact about penguins", tags=["birds"]),
            MemoryInput(content="We booked the cabin by the lake"),
            MemoryInput(content="It has a wood stove and a canoe"),
        ],
        session_id=7,
    )
    assert [r.created for r in results] == [True, False, False, True]
    assert results[1].id == before.id
    assert results[2].id == results[0].id
    # The stove memory never says "cabin", but its episode (the previous memory) does.
    hits = service.recall("cabin", k=3, min_relevance=0).hits
    assert results[3].id in {h.id for h in hits}
    assert next(h for h in hits if h.id == results[3].id).parts.lexical > 0


def test_one_invalid_item_stores_none_of_the_batch(service: MemoryService) -> None:
    from hebbian_memory.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="memory 2: content is empty"):
        service.remember_many([MemoryInput(content="fine"), MemoryInput(content="  ")])
    assert service.recall("fine", k=5).hits == []


def test_a_batch_cut_off_after_some_parts_can_be_sent_again_without_copies(service: MemoryService) -> None:
    batch = [MemoryInput(content=f"inventory line {n}: crate of item {n}") for n in range(250)]
    kept = service.remember_many(batch[:100])  # what a server killed after its first part had stored
    again = service.remember_many(batch)
    assert [r.id for r in again[:100]] == [r.id for r in kept]
    assert [r.created for r in again] == [False] * 100 + [True] * 150
    assert service.stats().memories == 250
