"""The PostgresStore: a psycopg connection pool, its lifecycle (open, close, purge) and the query classes it joins.
Several hebbian-memory servers may share one database: writes are single statements or transactions, migrations
run under an advisory lock, and one memory per (project, hash) is a unique constraint."""

import logging
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector

from hebbian_memory.errors import StorageError
from hebbian_memory.storage.base import MemoryStore
from hebbian_memory.storage.postgres.core import PURGE_DUE, Conn, redact, storage_error
from hebbian_memory.storage.postgres.episodes import EpisodeQueries
from hebbian_memory.storage.postgres.links import LinkQueries
from hebbian_memory.storage.postgres.memories import MemoryQueries
from hebbian_memory.storage.postgres.schema import ensure_vector_index, migrate
from hebbian_memory.storage.postgres.shared import SharedQueries
from hebbian_memory.storage.postgres.transfer import ImportQueries
from hebbian_memory.storage.rows import Counts

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

_TABLES = ("memories", "associations", "sessions", "access_events", "memory_use", "meta")
# Every session in UTC, so timestamptz comes back as UTC; a bounded wait for an unreachable server.
_CONNECT: dict[str, Any] = {"options": "-c timezone=UTC", "connect_timeout": 10}


def _configure(conn: Conn) -> None:
    register_vector(conn)  # the extension exists: open() made it before the pool's first connection
    conn.commit()


class PostgresStore(MemoryQueries, EpisodeQueries, LinkQueries, ImportQueries, SharedQueries):
    """Thread-safe access to one PostgreSQL database; every public method is one transaction on a pooled
    connection (``purge`` excepted: VACUUM runs outside one)."""

    @classmethod
    def open(cls, url: str, now: datetime, dim: int, pool_size: int = 4) -> "PostgresStore":
        """Connect to ``url``, create the ``vector`` extension and apply the migrations if needed (safe when
        several servers start at once), make the HNSW index for ``dim``-dimensional vectors, and open the pool.
        An unreachable server or a refused migration raises ``StorageError`` naming the URL (without password)."""
        try:
            with psycopg.connect(url, autocommit=True, **_CONNECT) as conn:
                migrate(conn, now)
                ensure_vector_index(conn, dim)
        except psycopg.Error as e:
            raise StorageError(
                f"Cannot open the PostgreSQL database {redact(url)}: {str(e).strip().splitlines()[0]}. Check that "
                "the server is running and reachable, and that the URL's user may create tables (and the `vector` "
                "extension, or that it is installed already)."
            ) from e
        pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=_CONNECT, configure=_configure, timeout=30, open=False
        )
        try:
            pool.open(wait=True, timeout=30)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            pool.close()
            raise storage_error(url, e, "opening the connection pool") from e
        return cls(pool, url)

    def close(self) -> None:
        """Release the pool. Every commit is already durable (PostgreSQL's WAL): nothing is flushed here."""
        self._pool.close()

    def checkpoint(self) -> None:
        """Nothing to do: a commit is durable in PostgreSQL's WAL, and CHECKPOINT needs a superuser. Deleted text
        may linger in the WAL and in dead tuples until the server recycles them; ``purge`` rewrites the tables."""

    def purge(self) -> tuple[int, int]:
        """VACUUM (FULL) of the tables, so deleted rows leave no bytes in them; (bytes before, bytes after) of the
        tables with their indexes and TOAST. It waits for open snapshots (an export) to end; a refused rewrite
        raises a typed error and leaves ``PURGE_DUE`` set."""
        try:
            with self._pool.connection() as conn:
                conn.autocommit = True  # VACUUM cannot run inside a transaction
                try:
                    before = self._size(conn)
                    conn.execute(f"VACUUM (FULL) {', '.join(_TABLES)}")  # pyright: ignore[reportArgumentType] -- constant names
                    after = self._size(conn)
                finally:
                    conn.autocommit = False
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise storage_error(
                self.url, e, "rewriting the tables (the purge)", "The tables were left as they were."
            ) from e
        with self._tx() as c:
            c.execute("DELETE FROM meta WHERE key = %s", [PURGE_DUE])
        return before, after

    @staticmethod
    def _size(conn: Conn) -> int:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(t::regclass))::bigint FROM unnest(%s::text[]) AS t", [list(_TABLES)]
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def get_meta(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = %s", [key])
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [key, value]
            )

    def count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM memories")[0][0])

    def project_counts(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._fetch("SELECT project, count(*) FROM memories GROUP BY project")}

    def counts(self) -> Counts:
        with self._tx("reading the database") as c:
            memories = c.execute("SELECT tier, count(*) FROM memories GROUP BY tier").fetchall()
            links = c.execute("SELECT tier, count(*) FROM associations GROUP BY tier").fetchall()
            kinds = c.execute("SELECT kind, count(*) FROM associations GROUP BY kind").fetchall()
        return Counts(
            memories_by_tier={int(t): int(n) for t, n in memories},
            links_by_tier={int(t): int(n) for t, n in links},
            links_by_kind={str(k): int(n) for k, n in kinds},
        )


# Checked by pyright (strict): the PostgreSQL store offers everything the service calls on a store.
_IS_A_MEMORY_STORE: type[MemoryStore] = PostgresStore
