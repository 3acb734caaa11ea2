"""`hebbian-memory doctor` with the PostgreSQL backend, on a real database (tests/postgres.py): the server, pgvector,
the schema and the search indexes, each with its fix when wrong."""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from hebbian_memory.cli import main
from hebbian_memory.storage.postgres import PostgresStore
from hebbian_memory.storage.postgres.schema import SCHEMA_VERSION
from tests import postgres
from tests.service.test_backup import START

HNSW = f"memories_embedding_hnsw_{postgres.DIM}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = postgres.create_database()
    try:
        yield postgres.database_url(name)
    finally:
        postgres.drop_database(name)


def doctor(data_dir: Path, url: str) -> Result:
    env = {"HEBBIAN_MEMORY_STORAGE_BACKEND": "postgres", "HEBBIAN_MEMORY_STORAGE_URL": url}
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "doctor"], env=env)


def test_doctor_reports_a_healthy_database(data_dir: Path, pg_url: str) -> None:
    PostgresStore.open(pg_url, START, postgres.DIM).close()
    result = doctor(data_dir, pg_url)
    assert result.exit_code == 0, result.output
    assert "ok   postgresql:" in result.output
    assert "ok   pgvector: vector extension" in result.output
    assert f"ok   schema: version {SCHEMA_VERSION}" in result.output
    assert f"ok   vector index (HNSW): {HNSW} valid" in result.output
    assert "ok   keyword index (GIN): memories_search valid" in result.output


def test_doctor_names_a_missing_vector_index_and_an_invalid_keyword_index(data_dir: Path, pg_url: str) -> None:
    PostgresStore.open(pg_url, START, postgres.DIM).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(HNSW)))
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'memories_search'::regclass")
    result = doctor(data_dir, pg_url)
    assert result.exit_code == 1
    assert f"BAD  vector index (HNSW): {HNSW} is missing" in result.output
    assert "fix: Start a hebbian-memory server on the database" in result.output
    assert "BAD  keyword index (GIN): memories_search is invalid" in result.output
    assert "REINDEX INDEX CONCURRENTLY memories_search" in result.output


def test_doctor_says_when_the_server_cannot_be_reached(data_dir: Path, pg_url: str) -> None:
    name = urlsplit(pg_url).path.lstrip("/")
    result = doctor(data_dir, pg_url.replace(f"/{name}", "/no_such_db", 1))
    assert result.exit_code == 1
    assert "BAD  postgresql:" in result.output
    assert "no_such_db" in result.output
