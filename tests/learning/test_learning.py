"""Plasticity in the service, with an injected clock: temporal and co-access links, the use gate, decay,
pruning, bounds and replay in consolidation passes, and forgetting."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import load_settings
from hebbian_memory.learning.graph import Learning
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from tests.backends import OpenStore, open_duckdb
from tests.helpers import FakeEmbedder

START = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def make(open_store: OpenStore, data_dir: Path, clock: ManualClock, **plasticity: object) -> MemoryService:
    overrides = {"data_dir": str(data_dir), **{f"plasticity.{k}": v for k, v in plasticity.items()}}
    settings = load_settings(env={}, overrides=overrides)
    service = MemoryService(settings, open_store(data_dir / "memory.duckdb", clock.now()), FakeEmbedder(), clock)
    service.warm_up()
    return service


@pytest.fixture
def service(data_dir: Path, clock: ManualClock, open_store: OpenStore) -> Iterator[MemoryService]:
    svc = make(open_store, data_dir, clock)
    yield svc
    svc.close()


def store_apart(service: MemoryService, *texts: str) -> list[int]:
    """Each in a session of its own, so no temporal link joins them."""
    return [service.remember(t, session_id=service.start_session("test")).id for t in texts]


def test_memories_stored_one_after_another_in_a_session_are_linked_in_time(service: MemoryService) -> None:
    session = service.start_session("test")
    first, second = (
        r.id for r in service.remember_many([MemoryInput(content="a one"), MemoryInput(content="b two")], session)
    )
    third = service.remember("c three", session_id=session).id
    loose = service.remember("d four").id  # no session: no episode
    assert sorted(service.links(second)) == [(first, 0.5), (third, 0.5)]
    assert service.links(loose) == []


def test_being_returned_once_is_not_use_but_being_returned_again_links(service: MemoryService) -> None:
    solar, panel = store_apart(service, "solar roof quote", "solar panel installer")
    session = service.start_session("test")
    service.recall("solar", session_id=session)
    service.flush()
    assert service.links(solar) == [], "one recall returning both links nothing"
    service.recall("solar", session_id=session)
    assert service.links(solar) == [], "learning is written off the recall's path"
    service.flush()
    assert service.links(solar) == [(panel, pytest.approx(0.025))]
    other = service.start_session("test")
    service.recall("solar", session_id=other)
    service.end_session(other)
    assert service.links(solar) == [(panel, pytest.approx(0.025))], "another session's first recall is not use"


def test_a_link_decays_by_elapsed_time_and_a_pass_twice_at_once_changes_nothing(
    data_dir: Path, clock: ManualClock, open_store: OpenStore
) -> None:
    service = make(open_store, data_dir, clock, replay_count=0)  # decay alone
    session = service.start_session("test")
    a, b = (r.id for r in service.remember_many([MemoryInput(content="x"), MemoryInput(content="y")], session))
    clock.advance(timedelta(days=7))
    service.consolidate()
    assert service.links(a) == [(b, pytest.approx(0.5 * 0.9**7))]
    graph = service._learning.neighbours(a)  # pyright: ignore[reportPrivateUsage]
    assert graph == [(b, pytest.approx(0.5 * 0.9**7), "temporal")], "recall spreads over the decayed weight"
    again = service.consolidate()
    assert service.links(a) == [(b, pytest.approx(0.5 * 0.9**7))]
    assert again.pruned == 0
    clock.advance(timedelta(days=33))  # 0.5 * 0.9**40 < 0.01: under the floor
    report = service.consolidate()
    assert report.pruned == 1
    assert service.links(a) == []
    assert service.stats().links == 0
    service.close()


def test_links_per_memory_are_bounded_keeping_the_strongest(
    data_dir: Path, clock: ManualClock, open_store: OpenStore
) -> None:
    service = make(open_store, data_dir, clock, max_links_per_memory=2, use_window=10, recall_uses=1)
    try:
        hub, *others = store_apart(service, "hub note", "hub alpha", "hub beta", "hub gamma")
        session = service.start_session("test")
        service.recall("hub", session_id=session)  # every hit used at once: all pairs linked
        service.associate(hub, [others[0]], 0.9)  # one strong link
        service.consolidate()
        links = dict(service.links(hub))
        assert len(links) == 2
        assert others[0] in links
        assert all(len(service.links(m)) <= 2 for m in [hub, *others])
    finally:
        service.close()


def test_forgotten_memories_and_their_links_never_come_back(service: MemoryService, clock: ManualClock) -> None:
    session = service.start_session("test")
    a, b, c = (r.id for r in service.remember_many([MemoryInput(content=t) for t in ("p", "q", "r")], session))
    service.associate(a, [c])
    service.forget(ids=[b])
    clock.advance(timedelta(days=1))
    service.consolidate()
    assert all(b not in dict(service.links(m)) for m in (a, c))
    assert b not in {h.id for h in service.recall("p q r", k=10).hits}


def test_replay_reactivates_the_strongest_links_of_important_memories_once_a_cycle(
    service: MemoryService, clock: ManualClock
) -> None:
    session = service.start_session("test")
    key, neighbour = (
        r.id
        for r in service.remember_many(
            [MemoryInput(content="vital fact", importance=1.0), MemoryInput(content="its context", importance=0.1)],
            session,
        )
    )
    clock.advance(timedelta(days=2))
    first = service.consolidate()
    # Decayed for two days, then reactivated once as a co-access.
    assert service.links(key) == [(neighbour, pytest.approx(0.5 * 0.9**2 + 0.025))]
    assert first.replayed >= 1
    assert service.consolidate().replayed == 0, "not replayed twice in one cycle"
    assert service.links(key) == [(neighbour, pytest.approx(0.5 * 0.9**2 + 0.025))]


def test_without_plasticity_no_links_are_made_or_followed(
    data_dir: Path, clock: ManualClock, open_store: OpenStore
) -> None:
    service = make(open_store, data_dir, clock, enabled=False)
    try:
        session = service.start_session("test")
        first = service.remember("one", session_id=session).id
        service.remember("two", session_id=session)
        service.recall("one", session_id=session)
        service.recall("one", session_id=session)
        assert service.links(first) == []
        assert all(h.via is None for h in service.recall("one two").hits)
    finally:
        service.close()


def test_being_recalled_is_an_access_that_restores_strength(service: MemoryService, clock: ManualClock) -> None:
    (kept,) = store_apart(service, "the boat's mooring number is 48")
    clock.advance(timedelta(days=10))
    service.consolidate()
    faded = service.stats().memories_by_tier
    assert faded == {1: 1}
    clock.advance(timedelta(days=1))
    before = {m.id: m for m in service._store.memory_states()}[kept]  # pyright: ignore[reportPrivateUsage]
    service.recall("mooring number", session_id=service.start_session("test"))
    service.flush()
    after = {m.id: m for m in service._store.memory_states()}[kept]  # pyright: ignore[reportPrivateUsage]
    assert after.last_use == clock.now()
    assert after.uses == before.uses + 1


def test_a_pass_keeps_what_changed_while_it_was_planning(service: MemoryService, clock: ManualClock) -> None:
    """The pass reads and computes without the write lock; writes skip links strengthened meanwhile and
    memories forgotten meanwhile (nothing of theirs comes back)."""
    from hebbian_memory.learning import maintenance

    session = service.start_session("test")
    a, b, c = (r.id for r in service.remember_many([MemoryInput(content=t) for t in ("u", "v", "w")], session))
    clock.advance(timedelta(days=40))  # every link would be pruned by this pass
    store, learning = service._store, service._learning  # pyright: ignore[reportPrivateUsage]
    learning.watch()
    plan = maintenance.plan(store.all_links(), store.memory_states(), clock.now(), learning.rules)
    service.associate(a, [b], 0.9)  # meanwhile: a-b strengthened
    service.forget(ids=[c])  # and c forgotten
    touched, gone = learning.changes()
    maintenance.apply(plan, store, learning, touched, gone)
    maintenance.apply_memories(plan, store)
    learning.unwatch()
    faded = 0.5 * 0.9**40  # the temporal link, decayed, then strengthened explicitly: w + 0.9 (1 - w)
    assert service.links(a) == [(b, pytest.approx(faded + 0.9 * (1 - faded)))], "the newer a-b survives the pass"
    assert service.links(c) == []
    assert [other for other, _ in service.links(b)] == [a]


@pytest.mark.parametrize("kind", ["temporal", "coaccess", "explicit"])
@pytest.mark.parametrize("weight", [0.0, 1e-9, 0.01, 0.5, 0.999999, 1.0])
def test_the_graph_gives_back_each_links_weight_and_kind(kind: str, weight: float) -> None:
    """The graph packs a link's weight and kind into one float; both must come back as they went in."""
    learning = Learning(load_settings(env={}).plasticity)
    learning.load([(1, 2, weight, kind)])
    for here, there in ((1, 2), (2, 1)):
        [(neighbour, got, got_kind)] = learning.neighbours(here)
        assert (neighbour, got_kind) == (there, kind)
        assert got == pytest.approx(weight, abs=1e-12)


def test_the_graph_cache_follows_the_stored_links_through_links_forgets_and_passes(
    service: MemoryService, clock: ManualClock
) -> None:
    """The in-memory graph recall spreads over must list exactly the stored links, with their weights."""

    def graph_and_store() -> tuple[dict[tuple[int, int, str], float], dict[tuple[int, int, str], float]]:
        cached = {
            (m, n, kind): w
            for m in ids
            for n, w, kind in service._learning.neighbours(m)  # pyright: ignore[reportPrivateUsage]
        }
        stored = {
            (m, link.target_id if link.source_id == m else link.source_id, link.kind): link.weight
            for m in ids
            for link in service._store.links_of(m)  # pyright: ignore[reportPrivateUsage]
        }
        return cached, stored

    session = service.start_session("test")
    ids = [r.id for r in service.remember_many([MemoryInput(content=w) for w in ("ant", "bee", "cat", "dog")], session)]
    service.associate(ids[0], [ids[3]], strength=0.8)
    for step in ("linked", "forgot", "passed"):
        if step == "forgot":
            service.forget(ids=[ids[1]])
        if step == "passed":
            clock.advance(timedelta(days=3))
            service.consolidate()
        cached, stored = graph_and_store()
        assert cached.keys() == stored.keys(), step
        assert all(cached[key] == pytest.approx(weight, abs=1e-9) for key, weight in stored.items()), step
    assert (ids[0], ids[3], "explicit") in cached
    assert not any(ids[1] in key[:2] for key in cached)


def events(data_dir: Path) -> tuple[int, datetime | None]:
    """How many access events the closed database holds, and when the oldest happened."""
    conn = duckdb.connect(str(data_dir / "memory.duckdb"))
    try:
        row = conn.execute("SELECT count(*), min(occurred_at) FROM access_events").fetchone()
    finally:
        conn.close()
    assert row is not None
    return int(row[0]), row[1] and row[1].replace(tzinfo=UTC)


def test_access_events_stay_a_bounded_window_while_access_counts_keep_everything(
    data_dir: Path, clock: ManualClock
) -> None:
    # DuckDB only: the access events are read from the table itself (no protocol method reads them back).
    service = make(open_duckdb, data_dir, clock, events_keep=40, events_keep_days=2.0)
    session = service.start_session("test")
    ids = [service.remember(f"note {n} about the harbor lantern", session_id=session).id for n in range(10)]
    for n in range(60):  # 600 recall events, 10 remembered
        service.recall("harbor lantern", k=10, session_id=session, min_relevance=0)
        service.flush()
        if n % 20 == 19:
            service.consolidate()
    assert all(view.access_count == 60 for view in service.get(ids))  # the sum learning reads is whole
    store = service._store  # pyright: ignore[reportPrivateUsage]
    assert isinstance(store, Store)
    held = store._fetch("SELECT count(*) FROM access_events")  # pyright: ignore[reportPrivateUsage]
    assert held[0][0] == 40
    clock.advance(timedelta(days=3))
    service.recall("harbor lantern", k=3, session_id=session, min_relevance=0)
    service.consolidate()  # older than two days: gone, whatever the count
    service.close()
    count, oldest = events(data_dir)
    assert count == 3
    assert oldest == clock.now()
