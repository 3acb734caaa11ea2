"""A bulk load into an empty PostgreSQL store (``hebbian-memory migrate``): the memories' vector (HNSW) and text
(GIN) indexes are dropped for the load and built once after it, far faster than keeping them current row by row.
The rows themselves go in through the store's ``import_*`` (COPY), one 'stored' change logged per batch."""

from collections.abc import Generator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from hebbian_memory.storage.postgres.core import storage_error

__all__ = ["bulk_load"]

# The indexes a load would otherwise update per row: every dimension's HNSW index and the text search's GIN.
_LOAD_INDEXES = """SELECT indexname, indexdef FROM pg_indexes
                   WHERE schemaname = current_schema() AND tablename = 'memories'
                     AND (indexname LIKE 'memories\\_embedding\\_hnsw\\_%' OR indexname = 'memories_search')"""


@contextmanager
def bulk_load(url: str) -> Generator[bool]:
    """Drop the indexes while ``memories`` is empty, yield whether it did, and build them again at the end (also
    when the load fails: a server must never find them missing). Yields False, dropping nothing, when the table
    holds rows: a load into it keeps the indexes current instead."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            with conn.transaction():
                conn.execute("LOCK TABLE memories IN SHARE ROW EXCLUSIVE MODE")
                empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM memories)").fetchone()
                found = conn.execute(_LOAD_INDEXES).fetchall() if empty and empty[0] else []
                dropped = [(str(n), str(d)) for n, d in found]
                for name, _ in dropped:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            try:
                yield bool(dropped)
            finally:
                # A build beyond maintenance_work_mem spills and slows down many times; this session may take more.
                conn.execute("SET maintenance_work_mem = '512MB'")
                for _, definition in dropped:
                    conn.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))  # pyright: ignore[reportCallIssue, reportArgumentType] -- the server's own definition
                conn.execute("ANALYZE memories")
    except psycopg.Error as e:
        raise storage_error(url, e, "loading the memories in bulk") from e
