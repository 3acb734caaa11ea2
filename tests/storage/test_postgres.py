"""What only the PostgreSQL store has to show: several servers (two stores, two pools) sharing one database, its
migrations, its indexes and its errors. Its answers to each call are checked against DuckDB in test_backends."""

import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hebbian_memory.errors import StorageError, StoredMeanwhileError
from hebbian_memory.storage import Decay, Growth, GrowthRule, Link, NewMemory
from hebbian_memory.storage.duckdb.schema import SCHEMA_VERSION
from hebbian_memory.storage.postgres import PostgresStore
from hebbian_memory.storage.postgres.schema import MIGRATIONS, ROW_VERSION
from tests import postgres

START = datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
DIM = 4


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh empty database on the run's server, dropped after the test."""
    name = postgres.create_database()
    try:
        yield postgres.database_url(name)
    finally:
        postgres.drop_database(name)


def memory(n: int, content_hash: str | None = None) -> NewMemory:
    vector = np.asarray([n, 1, 0, 0], dtype=np.float32)
    return NewMemory(f"note {n}", content_hash or f"h{n}", (), {}, 0.5, START, vector, "m", None)


def in_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` for i in range(n) on n threads started together; the errors raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_link_writes_from_two_servers_at_once_leave_one_whole_link(url: str) -> None:
    stores = [PostgresStore.open(url, START, DIM, pool_size=4) for _ in range(2)]
    try:
        a, b = stores[0].insert([memory(1), memory(2)], START)
        written = [
            Link(a, b, i / 10, 1 + i % 3, "coaccess", i, START, START + timedelta(seconds=i), START)
            for i in range(8 * 25)
        ]

        def write(thread: int) -> None:
            for k in range(25):  # 8 threads, 4 on each store, writing the same pair at once
                stores[thread % 2].save_links([written[thread * 25 + k]])

        assert in_threads(8, write) == []
        links = stores[1].all_links()
        assert len(links) == 1
        assert links[0] in written  # one write whole, never a mix of two
    finally:
        for store in stores:
            store.close()


def test_growth_from_two_servers_at_once_is_never_lost(url: str) -> None:
    """The Hebbian update is one statement computed from the row as stored: 8 threads on two servers each add
    0.001 to one link 25 times; every addition counts (a read-modify-write in Python would lose some)."""
    stores = [PostgresStore.open(url, START, DIM, pool_size=4) for _ in range(2)]
    try:
        a, b = stores[0].insert([memory(1), memory(2)], START)
        rule = GrowthRule("coaccess", 1, frozenset(), Decay(1.0, 1.0, 1.0, 24.0))  # no decay: a plain sum

        def grow(thread: int) -> None:
            for _ in range(25):
                stores[thread % 2].grow_links([Growth(a, b, 0.001)], rule, START)

        assert in_threads(8, grow) == []
        (link,) = stores[1].all_links()
        assert link.weight == pytest.approx(0.2, abs=1e-9)
        assert link.co_access_count == 200
    finally:
        for store in stores:
            store.close()


def test_a_named_lock_is_held_by_one_server_at_a_time(url: str) -> None:
    first, second = (PostgresStore.open(url, START, DIM) for _ in range(2))
    entered = threading.Event()

    def wait_for_it() -> None:
        with second.exclusive("consolidation"):
            entered.set()

    try:
        with first.exclusive("consolidation"):
            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            assert not entered.wait(0.5)  # the other server waits while this one holds it
            with second.exclusive("another name"):
                pass  # other names are other locks
        assert entered.wait(10)
        waiter.join()
    finally:
        first.close()
        second.close()


def test_two_servers_never_store_one_text_twice_in_a_project(url: str) -> None:
    first, second = (PostgresStore.open(url, START, DIM) for _ in range(2))
    try:
        stored = first.insert([memory(1, "same")], START)
        with pytest.raises(StoredMeanwhileError, match="Another server stored the same text"):
            second.insert([memory(2), memory(3, "same")], START)
        assert second.count() == 1  # the whole batch was refused
        assert second.ids_by_hash(["same", "h2"], "default") == {"same": stored[0]}
        other = NewMemory("note", "same", (), {}, 0.5, START, memory(4).embedding, "m", None, project="shop")
        assert second.insert([other], START)  # the same text in another project is another memory
    finally:
        first.close()
        second.close()


def test_migrations_run_once_when_servers_start_together(url: str) -> None:
    opened: list[PostgresStore] = []
    errors = in_threads(4, lambda _: opened.append(PostgresStore.open(url, START, DIM)))
    try:
        assert errors == []
        with psycopg.connect(url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for store in opened:
            store.close()


def test_an_unreachable_server_is_a_storage_error_naming_it_without_its_password() -> None:
    dead = "postgresql://hebbian:s3cret@127.0.0.1:9/memory?connect_timeout=2"  # port 9 (discard): nothing listens
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:9/memory") as caught:
        PostgresStore.open(dead, START, DIM)
    assert "s3cret" not in str(caught.value)
    assert "hebbian:***@" in str(caught.value)


def test_a_server_gone_after_open_is_a_storage_error_not_a_psycopg_one(url: str) -> None:
    store = PostgresStore.open(url, START, DIM)
    try:
        store.insert([memory(1)], START)
        with psycopg.connect(postgres.server_uri(), autocommit=True) as admin:  # every connection of the store killed
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [url.rsplit("/", maxsplit=1)[-1].split("?", maxsplit=1)[0]],
            )
        with suppress(StorageError):  # this one call may fail, typed; or the pool notices and reconnects at once
            assert store.count() == 1
        assert store.count() == 1
    finally:
        store.close()


def test_the_vector_and_text_indexes_exist_after_open(url: str) -> None:
    PostgresStore.open(url, START, DIM).close()
    with psycopg.connect(url) as conn:
        indexes = dict(
            conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memories'").fetchall()
        )
    assert "USING hnsw" in indexes[f"memories_embedding_hnsw_{DIM}"]
    assert "vector_cosine_ops" in indexes[f"memories_embedding_hnsw_{DIM}"]
    assert "USING gin (search)" in indexes["memories_search"]


def test_the_text_search_column_weighs_content_above_tags(url: str) -> None:
    store = PostgresStore.open(url, START, DIM)
    try:
        tagged = NewMemory("a river", "h1", ("stone",), {}, 0.5, START, memory(1).embedding, "m", None)
        said = NewMemory("a stone", "h2", (), {}, 0.5, START, memory(2).embedding, "m", None)
        ids = store.insert([tagged, said], START)
    finally:
        store.close()
    with psycopg.connect(url) as conn:
        ranked = conn.execute(
            "SELECT id FROM memories WHERE search @@ to_tsquery('simple', 'stone') "
            "ORDER BY ts_rank(search, to_tsquery('simple', 'stone')) DESC"
        ).fetchall()
    assert [r[0] for r in ranked] == [ids[1], ids[0]]


def test_an_export_records_the_schema_version_of_the_rows() -> None:
    assert ROW_VERSION == SCHEMA_VERSION, "exports record DuckDB's number for the same rows; update both together"


def test_a_trimmed_change_log_keeps_its_head_and_tells_a_reader_behind_it(url: str) -> None:
    writer, reader = (PostgresStore.open(url, START, DIM, pool_size=2) for _ in range(2))
    try:
        ids = [writer.insert([memory(n)], START)[0] for n in range(5)]
        head = reader.change_head()
        assert reader.changes(0).stored == frozenset(ids)
        assert writer.trim_changes(2) == 3
        assert reader.change_head() == head  # the newest change stays: numbering goes on from it
        behind, caught_up = reader.changes(0), reader.changes(head - 2)
        assert not behind.complete
        assert caught_up.complete
        assert caught_up.stored == frozenset(ids[-2:])
        writer.delete([ids[0]])
        after = reader.changes(head)
        assert (after.head, after.removed, after.complete) == (head + 1, frozenset(ids[:1]), True)
    finally:
        writer.close()
        reader.close()
