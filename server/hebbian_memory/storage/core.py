"""What every group of queries shares: the one DuckDB connection, its locks, transactions and snapshots."""

import threading
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

# The meta key noting that the file still holds deleted rows' bytes (see Store.purge).
PURGE_DUE = "purge_due"


def naive(ts: datetime) -> datetime:
    """Database times are naive UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC)


class StoreCore:
    """The connection and its locks; the query classes build on it, and ``Store`` joins them."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        # Held by a snapshot reader (export) on its own cursor and by purge, which swaps the file under it.
        self._file_lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Generator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._conn.execute("BEGIN TRANSACTION")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _fetch(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def snapshot(self) -> Generator[duckdb.DuckDBPyConnection]:
        """A read-only view of one moment, on its own cursor: writers carry on meanwhile (DuckDB MVCC)."""
        with self._file_lock:
            with self._lock:
                cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                yield cursor
                cursor.execute("COMMIT")
            finally:
                cursor.close()
