"""The in-memory and PostgreSQL stores answer as the DuckDB store does: the same random calls on DuckDB and on the
other (hypothesis), then every read method of the protocol compared, as the service sees them ("any order" results
sorted)."""

import tempfile
from collections.abc import Callable, Generator, Iterable
from contextlib import contextmanager
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hebbian_memory.config import load_settings
from hebbian_memory.errors import StorageError
from hebbian_memory.learning import plasticity
from hebbian_memory.storage import (
    Chain,
    Filters,
    Growth,
    GrowthRule,
    Link,
    MemoryStore,
    NewMemory,
    SessionRow,
    StoredMemory,
    UseRow,
)
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.schema import SCHEMA_VERSION
from hebbian_memory.storage.inmemory import InMemoryStore
from hebbian_memory.storage.inmemory.state import ROW_VERSION
from hebbian_memory.storage.postgres import PostgresStore
from tests import postgres

START = datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
DIM = 4
WORDS = ["apple", "river", "stone", "cloud"]
TAGS = ["a", "b", "c"]
KINDS = ["temporal", "coaccess", "explicit"]


def vector(n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray([n, n / 3, -n / 7, 0.25], dtype=np.float32)


class Pair:
    """Both stores, driven alike; ``ids`` are every memory id handed out (forgotten ones included)."""

    def __init__(self, duck: Store, other: MemoryStore) -> None:
        self.stores: tuple[MemoryStore, MemoryStore] = (duck, other)
        self.now = START
        self.ids: list[int] = []
        self.sessions: list[int] = []
        self.made = 0

    def both(self, call: Callable[[MemoryStore], object], any_order: bool = False) -> object:
        """Call both; they must answer alike (a list the protocol gives in any order: as a multiset)."""
        duck, memory = (normal(call(store), any_order) for store in self.stores)
        assert duck == memory
        return duck

    def step(self, data: st.DataObject) -> None:
        self.now += timedelta(seconds=data.draw(st.integers(0, 90_000)), microseconds=data.draw(st.integers(0, 999)))
        op = data.draw(st.sampled_from(WRITES))
        op(self, data)
        check(self)

    def some(self, data: st.DataObject, k: int = 3) -> list[int]:
        """Ids to name: mostly handed out ones (perhaps forgotten), sometimes unknown ones."""
        pool = [*self.ids, 999]
        return data.draw(st.lists(st.sampled_from(pool), max_size=k))

    def pairs(self, data: st.DataObject) -> list[tuple[int, int]]:
        found = [(min(a, b), max(a, b)) for a, b in zip(self.some(data), self.some(data), strict=False) if a != b]
        return list(dict.fromkeys(found))


def insert(p: Pair, data: st.DataObject) -> None:
    rows: list[NewMemory] = []
    for _ in range(data.draw(st.integers(1, 3))):
        p.made += 1
        rows.append(
            NewMemory(
                content=f"{data.draw(st.sampled_from(WORDS))} note {p.made}",
                content_hash=f"h{p.made}",  # one per (project, hash): the service's rule, and PostgreSQL's constraint
                tags=tuple(data.draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))),
                metadata={"n": p.made, "who": "Zoë"} if p.made % 2 else {},
                importance=data.draw(st.sampled_from([0.2, 0.5, 0.9])),
                event_time=p.now - timedelta(days=data.draw(st.integers(0, 5))),
                embedding=vector(p.made),
                embedding_model=data.draw(st.sampled_from(["m1", "m2"])),
                session_id=data.draw(st.sampled_from([None, *p.sessions])),
                project=data.draw(st.sampled_from(["default", "shop"])),
            )
        )
    chain = data.draw(st.sampled_from([None, Chain(None, 0.5), Chain(p.ids[-1] if p.ids else None, 0.5)]))
    p.ids.extend(cast("list[int]", p.both(lambda s: s.insert(rows, p.now, chain))))


def reinforce(p: Pair, data: st.DataObject) -> None:
    live = p.stores[0].all_ids().tolist()
    if live:
        memory_id = int(data.draw(st.sampled_from(live)))
        tags = data.draw(st.lists(st.sampled_from(TAGS), max_size=2))
        importance = data.draw(st.sampled_from([0.1, 0.7, 1.0]))
        p.both(lambda s: s.reinforce(memory_id, tags, importance, None, p.now))


def link(a: int, b: int, data: st.DataObject, now: datetime) -> Link:
    weight = data.draw(st.sampled_from([0.0, 0.125, 0.5, 1.0]))
    return Link(a, b, weight, data.draw(st.integers(1, 3)), data.draw(st.sampled_from(KINDS)), 2, now, now, now)


def events(p: Pair, data: st.DataObject) -> list[tuple[int, int | None, str, datetime]]:
    kinds = st.sampled_from(["recalled", "linked"])
    return [(i, None, data.draw(kinds), p.now - timedelta(hours=data.draw(st.integers(0, 3)))) for i in p.some(data)]


def save_links(p: Pair, data: st.DataObject) -> None:
    links = [link(a, b, data, p.now) for a, b in p.pairs(data)]
    stored = [(x.source_id, x.target_id) for x in p.stores[0].all_links()]
    delete = data.draw(st.lists(st.sampled_from(stored), max_size=2)) if stored else []
    happened = events(p, data)
    p.both(lambda s: s.save_links(links, delete, happened))


def record_events(p: Pair, data: st.DataObject) -> None:
    happened = events(p, data)
    p.both(lambda s: s.record_events(happened))


def save_use(p: Pair, data: st.DataObject) -> None:
    rows = [
        UseRow(i, float(n), n / 4, p.now, vector(n) if n % 2 else None, n / 2)
        for n, i in enumerate(dict.fromkeys(p.some(data)))
    ]
    growth, rule = grow(p, data)
    happened = events(p, data)
    p.both(lambda s: s.save_use(rows, growth, rule, p.now, happened))


def grow(p: Pair, data: st.DataObject) -> tuple[list[Growth], GrowthRule]:
    """Growth of links between stored memories, under one of the three learning rules."""
    live = set(p.stores[0].all_ids().tolist())
    pairs = [(a, b) for a, b in p.pairs(data) if a in live and b in live]
    gains = st.sampled_from([0.0, 0.1, 0.25, 1.0])
    growth = [Growth(a, b, data.draw(gains), data.draw(gains)) for a, b in pairs]
    kind = data.draw(st.sampled_from([plasticity.COACCESS, plasticity.USED, plasticity.EXPLICIT]))
    return growth, plasticity.growth_rule(kind, load_settings(env={}).plasticity)


def settle_links(p: Pair, data: st.DataObject) -> None:
    """A pass's writes, some planned from the stored state, some from a stale one, some for links not stored."""
    stored = {(x.source_id, x.target_id): (x.updated_at, x.co_access_count) for x in p.stores[0].all_links()}
    old = data.draw(st.lists(st.sampled_from(sorted(stored)), max_size=3)) if stored else []
    named = list(dict.fromkeys([*old, *p.pairs(data)]))

    def seen(e: tuple[int, int]) -> tuple[datetime, int]:
        """As stored, or stale: a later time, or the same time with another growth since (a stopped clock)."""
        when, n = stored.get(e, (p.now, 0))
        return data.draw(st.sampled_from([(when, n), (p.now + timedelta(seconds=1), n), (when, n + 1)]))

    as_of = {e: seen(e) for e in named}
    cut = data.draw(st.integers(0, len(named)))
    links = [link(a, b, data, p.now) for a, b in named[:cut]]
    p.both(lambda s: s.settle_links(links, named[cut:], as_of))


def grow_links(p: Pair, data: st.DataObject) -> None:
    growth, rule = grow(p, data)
    happened = events(p, data)
    p.both(lambda s: s.grow_links(growth, rule, p.now, happened))


def states(p: Pair, data: st.DataObject) -> None:
    ids = list(dict.fromkeys(p.some(data)))
    strengths = [0.25 * (n + 1) for n in range(len(ids))]
    tiers = [1 + n % 3 for n in range(len(ids))]
    p.both(lambda s: s.set_memory_states(ids, strengths, tiers))
    replayed = p.some(data)  # an id named twice is replayed once
    p.both(lambda s: s.mark_replayed(replayed, p.now))


def delete(p: Pair, data: st.DataObject) -> None:
    doomed = p.some(data, 2)
    purge_due = data.draw(st.booleans())
    p.both(lambda s: s.delete(doomed, purge_due))


def sessions(p: Pair, data: st.DataObject) -> None:
    if p.sessions and data.draw(st.booleans()):
        ended = data.draw(st.sampled_from([*p.sessions, 999]))
        p.both(lambda s: s.end_session(ended, p.now))
        return
    client = data.draw(st.sampled_from([None, "Claude"]))
    p.sessions.append(cast("int", p.both(lambda s: s.start_session("stdio", client, None, "shop", p.now))))


def upkeep(p: Pair, data: st.DataObject) -> None:
    vectors = {i: vector(-i) for i in p.some(data)}
    if vectors:  # DuckDB's executemany refuses an empty list (InvalidInputException); the service never sends one
        p.both(lambda s: s.replace_embeddings(vectors, "m3"))
    keep = data.draw(st.integers(0, 6))
    before = p.now - timedelta(hours=data.draw(st.integers(0, 30)))
    p.both(lambda s: s.trim_events(before, keep))
    if data.draw(st.booleans()):
        p.both(lambda s: s.clear_cues())
    p.both(lambda s: s.set_meta("k", str(p.now)))
    p.both(lambda s: s.purge()[1] >= 0)


def imports(p: Pair, data: st.DataObject) -> None:
    """Rows as an export gives them, under wanted ids some free, some taken, some repeated, some None."""
    wanted = data.draw(st.lists(st.sampled_from([None, 1, 2, 50, 51, *p.ids]), min_size=1, max_size=3))
    first = p.made  # each row its own hash: the caller never imports a duplicate (PostgreSQL refuses one)
    p.made += len(wanted)
    rows = [
        StoredMemory(
            i,
            "shop",
            f"imported {first + n}",
            f"i{first + n}",
            ("b", "a"),
            {"k": [1, 2]},
            0.5,
            START,
            p.now,
            START,
            p.now,
            3,
            0.75,
            2,
            data.draw(st.sampled_from([None, *p.sessions, 70])),
            1,
            START,
            "m1",
            vector(n),
            UseRow(0, 1.0, 0.0, p.now) if n % 2 else None,
        )
        for n, i in enumerate(wanted)
    ]
    p.ids.extend(cast("list[int]", p.both(lambda s: s.import_memories(rows))))
    sessions = [SessionRow(i, "http", "Claude", "1", "shop", START, None) for i in (1, 2, 40, 40)]
    p.both(lambda s: s.import_sessions(sessions))
    links = [link(a, b, data, START) for a, b in p.pairs(data)]
    p.both(lambda s: s.import_links(links))


WRITES = [
    insert, insert, reinforce, save_links, grow_links, grow_links, settle_links, record_events, save_use, states,
    delete, sessions, upkeep, imports,
]  # fmt: skip


def check(p: Pair) -> None:
    """Every read method of the protocol, on both."""
    ids = [*p.ids, 999]
    live = p.stores[0].all_ids().tolist()
    p.both(lambda s: s.all_ids().tolist())
    p.both(lambda s: s.get(ids))
    p.both(lambda s: s.missing(ids))
    p.both(lambda s: s.ids_by_hash([f"h{n}" for n in range(p.made + 1)] + ["i0"], "default"))
    p.both(lambda s: s.ids_by_hash([f"i{n}" for n in range(p.made + 1)], "shop"))
    p.both(lambda s: s.recent(3, "shop"))
    p.both(lambda s: s.embeddings(live, DIM))
    p.both(lambda s: list(s.iter_contents(batch=2)))
    p.both(lambda s: s.models_in_use())
    for f in (Filters(), Filters(tags=["a"]), Filters(since=p.now - timedelta(days=2), until=p.now, project="shop")):
        p.both(lambda s, f=f: s.filter_ids(f, 3), any_order=True)
        p.both(lambda s, f=f: s.filter_ids(f, 100), any_order=True)
        p.both(lambda s, f=f: s.matching(ids, f))
    p.both(lambda s: s.select_for_forget(None, ["a"], p.now - timedelta(days=1), None))
    p.both(lambda s: s.select_for_forget(ids[:3], [], None, "shop"))
    p.both(lambda s: s.documents())
    p.both(lambda s: s.documents(p.sessions[:1]))
    p.both(lambda s: [d for batch in s.iter_documents(2) for d in batch])
    p.both(lambda s: s.documents_around(ids[-3:]))
    p.both(lambda s: s.sessions_of(ids))
    for session in p.sessions:
        p.both(lambda s, session=session: s.last_of_session(session, 2**62))
        p.both(lambda s, session=session: s.last_of_session(session, ids[len(ids) // 2]))
    p.both(lambda s: sorted(s.graph(batch=2)))
    p.both(lambda s: s.all_links(), any_order=True)
    p.both(lambda s: s.links_between([(a, b) for a in ids for b in ids if a < b]))
    for i in ids:
        p.both(lambda s, i=i: s.links_of(i))
    p.both(lambda s: s.memory_states(), any_order=True)
    p.both(lambda s: s.uses(), any_order=True)
    p.both(lambda s: s.uses([*ids[:2], 10**9]), any_order=True)
    p.both(lambda s: (s.count(), s.project_counts(), s.counts(), s.get_meta("purge_due"), s.get_meta("k")))
    p.both(exported)


def exported(store: MemoryStore) -> object:
    with store.export_rows() as rows:
        return rows.totals(), list(rows.sessions()), list(rows.memories()), list(rows.links())


def normal(value: object, any_order: bool = False) -> object:
    """A value comparable with ==: arrays as lists, rows as tuples, "any order" collections sorted. The tags of a
    whole memory are compared as a set (DuckDB's list_distinct, which merges a reinforce's tags, keeps no order)."""
    if isinstance(value, np.ndarray):
        return cast("list[object]", value.tolist())
    if isinstance(value, StoredMemory):
        value = replace(value, tags=tuple(sorted(value.tags)))
    if is_dataclass(value) and not isinstance(value, type):
        return tuple(normal(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, dict):
        pairs = cast("dict[object, object]", value).items()
        return sorted(((repr(k), normal(v)) for k, v in pairs), key=repr)
    if isinstance(value, set | frozenset | list | tuple):
        items = [normal(v) for v in cast("Iterable[object]", value)]
        return sorted(items, key=repr) if any_order or isinstance(value, set | frozenset) else items
    return value


@contextmanager
def other_store(backend: str) -> Generator[MemoryStore]:
    """A fresh store of ``backend`` (a new database on the run's PostgreSQL server, dropped after)."""
    if backend == "memory":
        yield InMemoryStore()
        return
    name = postgres.create_database()
    store = PostgresStore.open(postgres.database_url(name), START, DIM)
    try:
        yield store
    finally:
        store.close()
        postgres.drop_database(name)


@pytest.mark.parametrize("backend", ["memory", "postgres"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_store_answers_every_read_as_duckdb_does(backend: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp, other_store(backend) as other:
        duck = Store.open(Path(tmp) / "m.duckdb", START)
        pair = Pair(duck, other)
        try:
            for _ in range(data.draw(st.integers(1, 12))):
                pair.step(data)
        finally:
            duck.close()


def test_a_failed_write_changes_nothing() -> None:
    store = InMemoryStore()
    store.insert([NewMemory("kept", "h1", (), {}, 0.5, START, vector(1), "m", None)], START)
    bad = NewMemory("never", "h2", (), {"not json": object()}, 0.5, START, vector(2), "m", None)
    with pytest.raises(TypeError):
        store.insert([NewMemory("first of the batch", "h3", (), {}, 0.5, START, vector(3), "m", None), bad], START)
    assert store.count() == 1
    assert store.ids_by_hash(["h1", "h3"], "default") == {"h1": 1}
    with store.export_rows() as rows:
        assert rows.totals().memories == 1


def test_nothing_may_be_called_after_close() -> None:
    store = InMemoryStore()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.count()


def test_an_export_records_the_schema_version_of_the_rows() -> None:
    assert ROW_VERSION == SCHEMA_VERSION, "the in-memory rows follow the DuckDB schema; update both together"
