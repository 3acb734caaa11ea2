"""`hebbian-memory migrate` between a real DuckDB file and a real PostgreSQL database (tests/postgres.py), through
the real CLI, on a store filled through the real service with the real model."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner, Result

from hebbian_memory.cli import main
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.election import OwnerLock
from hebbian_memory.storage import MemoryStore
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.postgres import PostgresStore
from tests import postgres
from tests.helpers import shared_model_cache
from tests.service.test_backup import START, fill

SECRET = "Sw0rdf1sh-not-to-print"
QUERIES = ("staging server deploys", "what is the blog built with?", "tea", "mercury staging")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database's URL, with a password in it (the embedded server trusts its socket, so any password
    connects): the one thing migrate must never print."""
    name = postgres.create_database()
    try:
        parts = urlsplit(postgres.database_url(name))
        user = parts.username or "postgres"
        host = parts.netloc.rsplit("@", 1)[-1]
        yield urlunsplit(parts._replace(netloc=f"{user}:{SECRET}@{host}"))
    finally:
        postgres.drop_database(name)


@pytest.fixture
def filled(settings: Settings, real_embedder: OnnxEmbedder) -> Path:
    """The data dir's DuckDB store filled through the service: two projects, sessions, every link kind, a use
    record, a forgotten memory (a gap in the ids)."""
    clock = ManualClock(START)
    service = MemoryService(
        settings, Store.open(settings.data_dir / "memory.duckdb", clock.now()), real_embedder, clock
    )
    service.warm_up()
    fill(service, clock)
    service.close()
    return settings.data_dir


def migrate(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "migrate", *args], env=env)


def rows_of(store: MemoryStore) -> dict[str, list[Any]]:
    """Every exported row, comparable (vectors as their bytes, tags as a set)."""

    def plain(row: Any) -> tuple[Any, ...]:
        out: list[Any] = []
        for name in row.__slots__:
            value = getattr(row, name)
            if name in {"embedding", "cue"}:
                value = None if value is None else value.tobytes()
            elif name == "tags":
                value = sorted(value)
            elif name == "use" and value is not None:
                value = plain(value)
            out.append(value)
        return tuple(out)

    with store.export_rows() as rows:
        return {
            "sessions": [plain(s) for s in rows.sessions()],
            "memories": [plain(m) for m in rows.memories()],
            "links": [plain(x) for x in rows.links()],
        }


def top_hits(service: MemoryService) -> list[list[int]]:
    return [[h.id for h in service.recall(q, k=5, project=None).hits] for q in QUERIES]


def test_a_store_moves_to_postgres_and_back_with_every_row_equal_and_the_same_recall(
    filled: Path, pg_url: str, tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    source = Store.open(filled / "memory.duckdb", START)
    before = rows_of(source)
    source.close()
    assert before["links"]
    assert any(m[-1] is not None for m in before["memories"]), "a use record travels too"

    there = migrate(filled, "--to", "postgres", pg_url, "--json")
    assert there.exit_code == 0, there.output
    summary = json.loads(there.stdout)
    assert (summary["sessions"], summary["memories"], summary["links"]) == (
        len(before["sessions"]),
        len(before["memories"]),
        len(before["links"]),
    )
    assert summary["indexes_rebuilt"] is True
    shown = migrate(filled, "--to", "postgres", pg_url, "--into-nonempty")
    assert shown.exit_code == 0, shown.output
    assert "HEBBIAN_MEMORY_STORAGE_BACKEND=postgres HEBBIAN_MEMORY_STORAGE_URL=" in shown.stdout
    assert f"{len(before['memories'])} memories were in the target already" in shown.stdout
    assert SECRET not in there.output + shown.output

    with psycopg.connect(pg_url, autocommit=True) as conn:  # built again after the load (before any open)
        built = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'memories'")}
    assert {f"memories_embedding_hnsw_{postgres.DIM}", "memories_search"} <= built
    pg = PostgresStore.open(pg_url, START, postgres.DIM)
    assert rows_of(pg) == before
    pg.close()

    back = tmp_path / "back" / "memory.duckdb"
    env = {"HEBBIAN_MEMORY_STORAGE_BACKEND": "postgres", "HEBBIAN_MEMORY_STORAGE_URL": pg_url}
    home = migrate(filled, "--to", "duckdb", str(back), "--json", env=env)
    assert home.exit_code == 0, home.output
    assert SECRET not in home.output
    final = Store.open(back, START)
    assert rows_of(final) == before
    final.close()

    # The same question finds the same memories, in the same order, on either side.
    settings = load_settings(env={}, overrides={"data_dir": str(filled), "model.cache_dir": shared_model_cache()})
    hits: list[list[list[int]]] = []
    for store in (Store.open(filled / "memory.duckdb", START), PostgresStore.open(pg_url, START, postgres.DIM)):
        service = MemoryService(settings, store, real_embedder, ManualClock(START))
        service.warm_up()
        hits.append(top_hits(service))
        service.close()
    assert hits[0] == hits[1]
    assert all(hits[0])


def test_a_target_holding_memories_is_refused_and_left_unchanged(filled: Path, pg_url: str) -> None:
    assert migrate(filled, "--to", "postgres", pg_url).exit_code == 0
    pg = PostgresStore.open(pg_url, START, postgres.DIM)
    before = rows_of(pg)
    pg.close()
    refused = migrate(filled, "--to", "postgres", pg_url)
    assert refused.exit_code == 1
    assert f"holds {len(before['memories'])} memories already" in refused.output
    assert "--into-nonempty" in refused.output
    assert "Nothing was written" in refused.output
    assert SECRET not in refused.output
    pg = PostgresStore.open(pg_url, START, postgres.DIM)
    assert rows_of(pg) == before
    pg.close()

    # Back into a DuckDB file that holds memories (the data dir's own): refused, the file unchanged.
    env = {"HEBBIAN_MEMORY_STORAGE_BACKEND": "postgres", "HEBBIAN_MEMORY_STORAGE_URL": pg_url}
    stamp = (filled / "memory.duckdb").stat().st_mtime_ns
    home = migrate(filled, "--to", "duckdb", env=env)
    assert home.exit_code == 1
    assert "memories already" in home.output
    assert (filled / "memory.duckdb").stat().st_mtime_ns == stamp


def test_a_data_dir_owned_by_a_server_is_refused_with_advice(filled: Path, pg_url: str) -> None:
    lock = OwnerLock(filled)  # what a running server holds for its whole life
    assert lock.try_acquire()
    try:
        refused = migrate(filled, "--to", "postgres", pg_url)
    finally:
        lock.release()
    assert refused.exit_code == 1
    assert "server is running" in refused.output
    assert "Stop the servers first" in refused.output
    pg = PostgresStore.open(pg_url, START, postgres.DIM)
    assert pg.count() == 0
    pg.close()


def test_an_unreachable_database_is_named_without_its_password(filled: Path, pg_url: str) -> None:
    parts = urlsplit(pg_url)
    missing = urlunsplit(parts._replace(path="/no_such_database"))
    failed = migrate(filled, "--to", "postgres", missing)
    assert failed.exit_code == 1
    assert "no_such_database" in failed.output
    assert SECRET not in failed.output
