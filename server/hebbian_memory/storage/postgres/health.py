"""What `hebbian-memory doctor` reports of a PostgreSQL store, read on a connection of its own without changing
anything (opening the store would migrate it and make a missing index, hiding what is wrong)."""

from dataclasses import dataclass

import psycopg

from hebbian_memory.storage.postgres.core import storage_error
from hebbian_memory.storage.postgres.schema import SCHEMA_VERSION

__all__ = ["IndexHealth", "PostgresHealth", "health"]


@dataclass(frozen=True, slots=True)
class IndexHealth:
    name: str
    exists: bool
    valid: bool  # pg_index.indisvalid: False after a failed CREATE INDEX CONCURRENTLY, until it is rebuilt


@dataclass(frozen=True, slots=True)
class PostgresHealth:
    server_version: str  # e.g. "16.4"
    vector_version: str | None  # the pgvector extension's, None when not created in this database
    schema_version: int  # the database's, 0 before any server created the tables
    expected_schema: int  # the one this hebbian-memory applies
    vector_index: IndexHealth  # the HNSW index for the model's dimension
    text_index: IndexHealth  # the GIN index of the keyword search


def _index(conn: psycopg.Connection[tuple[object, ...]], name: str) -> IndexHealth:
    row = conn.execute(
        """SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace""",
        [name],
    ).fetchone()
    return IndexHealth(name, row is not None, bool(row and row[0]))


def health(url: str, dim: int) -> PostgresHealth:
    """The facts, read only; an unreachable server raises our typed error naming the URL without its password."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            schema = 0
            if conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone() == (True,):
                row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
                schema = int(str(row[0])) if row else 0
            return PostgresHealth(
                server_version=str(server[0]).split()[0] if server else "unknown",
                vector_version=str(vector[0]) if vector else None,
                schema_version=schema,
                expected_schema=SCHEMA_VERSION,
                vector_index=_index(conn, f"memories_embedding_hnsw_{dim}"),
                text_index=_index(conn, "memories_search"),
            )
    except psycopg.Error as e:
        raise storage_error(url, e, "checking the database") from e
