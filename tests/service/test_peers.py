"""Two services sharing one store, as two servers share one PostgreSQL database: each keeps its own caches and
catches up from the store's change log, so a recall on one sees what the other stored, forgot and linked."""

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.errors import StoredMeanwhileError
from hebbian_memory.inputs import content_hash
from hebbian_memory.learning import maintenance, plasticity
from hebbian_memory.learning.graph import Learning
from hebbian_memory.service import peers
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.service.records import MemoryRecord
from hebbian_memory.storage import Growth, MemoryStore, NewMemory
from hebbian_memory.storage.inmemory import InMemoryStore
from tests.helpers import FakeEmbedder, shared_model_cache
from tests.postgres import open_postgres

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _settings(data_dir: Path) -> Settings:
    return load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})


@pytest.fixture(params=["memory", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> list[MemoryStore]:
    """Two servers' stores over one database: one in-memory store shared, or two PostgreSQL connection pools."""
    if request.param == "memory":
        one = InMemoryStore()
        return [one, one]
    return [open_postgres(tmp_path / "shared", START) for _ in range(2)]


@pytest.fixture
def shared(stores: list[MemoryStore]) -> MemoryStore:
    return stores[0]


def _servers(tmp_path: Path, stores: list[MemoryStore], embedder: FakeEmbedder) -> list[MemoryService]:
    services = [
        MemoryService(_settings(tmp_path / name), store, embedder, ManualClock(START))
        for name, store in zip("ab", stores, strict=True)
    ]
    for service in services:
        service.warm_up()
    return services


@pytest.fixture
def pair(tmp_path: Path, stores: list[MemoryStore]) -> Iterator[tuple[MemoryService, MemoryService]]:
    """Two servers (their own data dirs, caches and clocks) over one shared database."""
    a, b = _servers(tmp_path, stores, FakeEmbedder())
    yield a, b
    a.close()
    if stores[1] is not stores[0]:
        b.close()


def _memory(text: str) -> NewMemory:
    return NewMemory(text, content_hash(text), (), {}, 0.5, START, FakeEmbedder().embed([text])[0], "m", None)


def _ids(service: MemoryService, query: str, project: str | None = "default") -> list[int]:
    return [hit.id for hit in service.recall(query, k=10, project=project, min_relevance=0).hits]


def test_a_recall_on_one_server_sees_what_another_stored_and_forgot(pair: tuple[MemoryService, MemoryService]) -> None:
    a, b = pair
    b.recall("anything at all", min_relevance=0)  # b's caches are warm before a writes
    stored = a.remember("The staging database runs on port 6543").id
    assert _ids(b, "staging database port") == [stored]
    a.forget(ids=[stored])
    assert _ids(b, "staging database port") == []


def test_another_servers_memory_in_another_project_stays_out_of_this_projects_recall(
    pair: tuple[MemoryService, MemoryService],
) -> None:
    """Project counts are a cache too: with every memory in 'default', recall skips the project filter, so a stale
    count would let a memory another server put in 'secret' through."""
    a, b = pair
    mine = b.remember("Lunch menu for the offsite is tacos").id
    assert _ids(b, "offsite lunch menu") == [mine]
    theirs = a.remember("Offsite lunch menu budget is secret", project="secret")
    assert _ids(b, "offsite lunch menu") == [mine]
    assert set(_ids(b, "offsite lunch menu", project=None)) == {mine, theirs.id}


def test_links_made_on_one_server_reach_the_others_graph(pair: tuple[MemoryService, MemoryService]) -> None:
    a, b = pair
    x = a.remember("Deploys go out on Tuesdays").id
    y = a.remember("The release train leaves at noon").id
    b.recall("deploys", min_relevance=0)
    a.associate(x, [y], strength=0.9, session_id=None)
    hits = b.recall("When do deploys go out?", k=5, min_relevance=0).hits
    linked = [hit for hit in hits if hit.id == y]
    assert linked, "the memory linked on the other server is reached through the link"
    assert linked[0].via is not None
    assert linked[0].via.memory_id == x


@pytest.mark.parametrize("clock", ["moving", "stopped"])
def test_a_pass_keeps_a_link_another_server_grew_after_the_pass_read_it(
    pair: tuple[MemoryService, MemoryService], shared: MemoryStore, clock: str
) -> None:
    """A pass plans from a snapshot; a link another server grew meanwhile keeps its newer state, though this
    server's own watch of its writes knows nothing of it (the store compares the link's updated_at)."""
    a, _ = pair
    store = shared
    rules = load_settings(env={}).plasticity
    x, y = a.remember("Backups run nightly").id, a.remember("Restores are tested monthly").id
    a.associate(x, [y], strength=0.5, session_id=None)
    years_later = START + timedelta(days=3650)
    plan = maintenance.plan(store.all_links(), store.memory_states(), years_later, rules)
    assert (x, y) in plan.dropped  # ten idle years: pruned, as planned
    # The other server's clock: later, or stopped at the link's own time (its updated_at does not move then).
    when = years_later if clock == "moving" else START
    grown = store.grow_links([Growth(x, y, 0.0, 0.8)], plasticity.growth_rule(plasticity.EXPLICIT, rules), when)
    report = maintenance.apply(plan, store, Learning(rules), set(), set())
    assert report.pruned == 0
    assert store.links_between([(x, y)])[(x, y)] == grown[0][0]


class _Together(FakeEmbedder):
    """Both servers embed the same text at once, after each has looked for it and before either stores it."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self._barrier = barrier

    def embed(self, texts: Sequence[str]) -> Vectors:
        if texts == ["Our VPN endpoint moved to vpn2"]:
            self._barrier.wait(timeout=10)
        return super().embed(texts)


def test_the_same_text_remembered_on_two_servers_at_once_is_stored_once(
    tmp_path: Path, stores: list[MemoryStore], shared: MemoryStore
) -> None:
    services = _servers(tmp_path, stores, _Together(threading.Barrier(2)))
    with ThreadPoolExecutor(2) as pool:
        first, second = (pool.submit(s.remember, "Our VPN endpoint moved to vpn2") for s in services)
    a, b = first.result(), second.result()
    assert a.id == b.id
    assert sorted([a.created, b.created]) == [False, True]
    assert shared.count() == 1
    for service in services if stores[1] is not stores[0] else services[:1]:
        service.close()


def test_use_reports_made_on_one_server_reorder_the_others_recall(pair: tuple[MemoryService, MemoryService]) -> None:
    """What assistants said they used (and what misled them) is learned by every server, not only the one told."""
    a, b = pair
    ids = [a.remember(text).id for text in ("The cache is warmed by a cron job", "The cache is warmed by a cron task")]
    first = _ids(b, "cache warmed by cron")[:2]
    assert sorted(first) == sorted(ids)
    for _ in range(3):  # the one b ranks first misled, the other was used
        a.recall("cache warmed by cron", used=[first[1]], misled=[first[0]], min_relevance=0)
    assert _ids(b, "cache warmed by cron")[:2] == first[::-1]


def test_a_server_behind_a_trimmed_change_log_reloads_its_caches(
    pair: tuple[MemoryService, MemoryService], shared: MemoryStore
) -> None:
    a, b = pair
    old = a.remember("The old build server was called jenkins-1").id
    assert _ids(b, "old build server") == [old]  # b holds it
    a.forget(ids=[old])
    x = a.remember("Deploys go out on Tuesdays").id
    y = a.remember("The release train leaves at noon").id
    a.associate(x, [y], strength=0.9, session_id=None)
    assert shared.trim_changes(1) > 0  # b's point is gone from the log
    assert not shared.changes(0).complete
    hits = b.recall("When do deploys go out?", k=5, min_relevance=0).hits
    assert [h.id for h in hits if h.reason == "direct"][:1] == [x]
    linked = [h for h in hits if h.id == y]
    assert linked
    assert linked[0].via is not None
    assert linked[0].via.memory_id == x
    assert old not in _ids(b, "old build server")
    assert b.stats().memories == 2


def test_flushes_trim_the_change_log_and_a_server_behind_it_still_catches_up(
    pair: tuple[MemoryService, MemoryService], shared: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "TRIM_EVERY", 2)
    monkeypatch.setattr(peers, "CHANGES_KEPT", 1)
    a, b = pair
    start = shared.change_head()
    stored = [a.remember(f"Meeting room {n} has a projector").id for n in range(3)]
    a.flush()
    assert not shared.changes(start).complete  # a trimmed what b has not read
    assert set(_ids(b, "meeting room projector")) == set(stored)


def test_a_store_refuses_to_import_a_text_another_server_stored_meanwhile(
    stores: list[MemoryStore], shared: MemoryStore
) -> None:
    stored = shared.insert([_memory("The wiki moved to notion")], START)
    with shared.export_rows() as rows:
        row = next(iter(rows.memories()))
    with pytest.raises(StoredMeanwhileError):
        shared.import_memories([replace(row, id=None)])
    assert shared.all_ids().tolist() == stored
    for store in {id(s): s for s in stores}.values():
        store.close()


def test_an_import_racing_remembers_of_the_same_texts_on_another_server_stores_each_once(
    pair: tuple[MemoryService, MemoryService], shared: MemoryStore
) -> None:
    a, b = pair
    texts = [f"Runbook step {n}: restart the queue worker" for n in range(40)]
    with ThreadPoolExecutor(2) as pool:
        imported = pool.submit(a.import_memories, [MemoryRecord(content=t) for t in texts])
        remembered = pool.submit(lambda: [b.remember(t).id for t in texts])
    assert imported.result().ids == remembered.result()  # whichever stored a text, both name the same memory
    assert shared.count() == len(texts)
