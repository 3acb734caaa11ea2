"""What every group of queries shares: the connection pool, transactions, snapshots, and psycopg's errors turned
into ours. Every public method is one transaction on one pooled connection; no psycopg error leaves the store."""

import itertools
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import psycopg
import psycopg_pool
from pgvector import Vector
from psycopg import sql

from hebbian_memory.errors import DatabaseDamagedError, StorageError, StorageFaultError, StoredMeanwhileError
from hebbian_memory.storage.rows import PURGE_DUE

__all__ = [
    "NOTHING_CHANGED",
    "PURGE_DUE",
    "Conn",
    "PgCore",
    "as_array",
    "aware",
    "redact",
    "storage_error",
    "vector_texts",
]

NOTHING_CHANGED = "Nothing was changed."
_cursor_numbers = itertools.count(1)
Conn = psycopg.Connection[tuple[Any, ...]]


def aware(ts: datetime) -> datetime:
    """timestamptz comes back in the session's zone (UTC); the rows carry ``datetime.UTC`` itself."""
    return ts.astimezone(UTC)


def vector_texts(rows: Sequence[npt.NDArray[np.float32]]) -> list[str]:
    """Vectors as pgvector's text form: a list of them binds as one ``text[]`` that SQL casts to ``vector[]``."""
    return ["[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]" for v in rows]


def as_array(value: Any) -> npt.NDArray[np.float32]:
    """A vector column's value (pgvector's ``Vector``) as a float32 array."""
    return np.asarray(value.to_numpy() if isinstance(value, Vector) else value, dtype=np.float32)


def redact(url: str) -> str:
    """The URL without its password, fit for a message or a log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable database URL>"
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def storage_error(url: str, error: Exception, doing: str, outcome: str = NOTHING_CHANGED) -> StorageError:
    """Our typed error for a psycopg (or pool) error: the server refusing a write (disk full, read-only) or being
    unreachable is a ``StorageFaultError`` (the service keeps reading what it can and retries); damaged data is a
    ``DatabaseDamagedError``; anything else a ``StorageError``. Each names the URL without its password."""
    where = redact(url)
    state = getattr(error, "sqlstate", None) or ""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if state.startswith("XX00"):  # data_corrupted, index_corrupted
        return DatabaseDamagedError(
            f"The PostgreSQL database {where} reports damaged data while {doing} ({reason}). {outcome} "
            "Restore it from a backup, or run `hebbian-memory import` of your latest export into a new database."
        )
    if state == "53100":  # disk_full
        kind, problem = "full", f"The PostgreSQL server's disk is full: {doing} failed at {where} ({reason})."
        advice = "Free space on the database server's disk and call again; writes resume by themselves."
    elif state == "25006":  # read_only_sql_transaction: a hot standby, or default_transaction_read_only
        kind, problem = "read-only", f"The PostgreSQL database {where} is read-only: {doing} failed ({reason})."
        advice = "Point hebbian-memory at the primary server (not a standby), or make the database writable."
    elif isinstance(error, psycopg.OperationalError | psycopg_pool.PoolTimeout) or state.startswith(("08", "57P")):
        kind, problem = "io", f"The PostgreSQL server at {where} cannot be reached: {doing} failed ({reason})."
        advice = "Check that the database server is running and reachable, then call again."
    elif state.startswith("53") or state.startswith("58"):  # insufficient resources, system errors
        kind, problem = "io", f"The PostgreSQL server at {where} refused the work: {doing} failed ({reason})."
        advice = "Check the database server (its log, its disk and memory), then call again."
    else:
        return StorageError(f"The PostgreSQL database {where} refused {doing} ({reason}). {outcome}")
    return StorageFaultError(kind, Path(where), problem, outcome, advice)


class PgCore:
    """The pool; the query classes build on it, and ``PostgresStore`` joins them."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Conn], url: str) -> None:
        self._pool = pool
        self.url = url

    @contextmanager
    def _tx(self, doing: str = "writing to the database") -> Generator[Conn]:
        """One transaction on one pooled connection; psycopg's errors become ours (the transaction rolled back)."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise storage_error(self.url, e, doing) from e

    @contextmanager
    def _storing(self) -> Generator[Conn]:
        """A transaction that stores new memories: a (project, hash) another server stored since the service
        looked raises ``StoredMeanwhileError`` (nothing was stored), so the caller can look again."""
        try:
            with self._tx() as c:
                yield c
        except StorageError as e:
            if isinstance(e.__cause__, psycopg.errors.UniqueViolation):
                raise StoredMeanwhileError(
                    f"Another server stored the same text in this project at the same moment ({redact(self.url)}). "
                    "Nothing was stored by this call; call again to reinforce the stored memory."
                ) from e.__cause__
            raise

    def _fetch(
        self, query: str | sql.Composed, params: Sequence[object] | dict[str, object] = ()
    ) -> list[tuple[Any, ...]]:
        with self._tx("reading the database") as c:
            return c.execute(query, params).fetchall()  # pyright: ignore[reportArgumentType] -- LiteralString rule

    @contextmanager
    def snapshot(self, doing: str = "reading the database") -> Generator[Conn]:
        """A read-only REPEATABLE READ transaction held open for the context: one consistent moment (MVCC; writers
        carry on). A purge (VACUUM FULL) waits for it."""
        try:
            with self._pool.connection() as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                try:
                    with conn.transaction():
                        yield conn
                finally:
                    conn.isolation_level = None
                    conn.read_only = None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise storage_error(self.url, e, doing) from e

    def _stream(self, conn: Conn, query: str, params: Sequence[object], batch: int) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of ``query`` in lists of ``batch``, through a server-side cursor (never all held at once)."""
        # A name of its own: an export may read two streams of one snapshot at once (interleaved generators).
        with conn.cursor(name=f"hebbian_stream_{next(_cursor_numbers)}") as cur:
            cur.execute(query, params)  # pyright: ignore[reportArgumentType] -- LiteralString rule
            while rows := cur.fetchmany(batch):
                yield rows
