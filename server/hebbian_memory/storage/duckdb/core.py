"""What every group of queries shares: the one DuckDB connection, its locks, transactions and snapshots.

A disk that refuses a write (full, read-only) fails only that transaction: it becomes a typed
``StorageFaultError``. A failed checkpoint is worse: DuckDB then refuses every statement until the database is
opened again, so the connection is reopened at once (read-only while the folder refuses writes; the WAL keeps
every commit), and read-write again at the next write that finds the folder writable.
"""

import logging
import threading
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from hebbian_memory.errors import StorageFaultError
from hebbian_memory.faults import fault
from hebbian_memory.storage.locks import NamedLocks
from hebbian_memory.storage.rows import PURGE_DUE

__all__ = ["DISK_ERRORS", "NOTHING_CHANGED", "PURGE_DUE", "StoreCore", "aware", "naive"]

log = logging.getLogger(__name__)

NOTHING_CHANGED = "Nothing was changed."
# What DuckDB raises when the disk refuses it: an I/O error, a commit that could not reach the WAL, or a fatal
# error (a failed checkpoint) after which the database must be opened again.
DISK_ERRORS = (duckdb.IOException, duckdb.FatalException, duckdb.TransactionException)


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
        self.exclusive = NamedLocks().exclusive  # one process writes the file: its threads are all to keep apart
        self._read_only = False  # reopened read-only after a failed checkpoint in a folder refusing writes
        self._broken = False  # not even a read-only reopen worked; tried again at the next call
        self._open_error: Exception = duckdb.IOException("the database could not be opened again")

    @contextmanager
    def _tx(self) -> Generator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._usable(write=True)
            try:
                self._conn.execute("BEGIN TRANSACTION")
                try:
                    yield self._conn
                except BaseException:
                    with suppress(duckdb.Error):  # DuckDB may have ended a failed transaction itself
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except DISK_ERRORS as e:
                raise self._disk_fault(e, "writing to the database", NOTHING_CHANGED) from e

    def _fetch(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._usable(write=False)
            try:
                return self._conn.execute(sql, params).fetchall()
            except (duckdb.IOException, duckdb.FatalException) as e:
                raise self._disk_fault(e, "reading the database", NOTHING_CHANGED) from e

    def _checkpoint(self, outcome: str) -> None:
        """Fold the WAL into the file; a failure (which invalidates DuckDB's database) reopens it."""
        with self._lock:
            self._usable(write=True)
            try:
                self._conn.execute("CHECKPOINT")
            except DISK_ERRORS as e:
                raise self._disk_fault(e, "checkpointing the database", outcome) from e

    def _disk_fault(self, error: duckdb.Error, doing: str, outcome: str) -> StorageFaultError:
        """The typed error for ``error``; after a fatal one, the database is opened again first."""
        if isinstance(error, duckdb.FatalException):
            self._reopen()
        return fault(self.path, error, doing, outcome)

    def _usable(self, write: bool) -> None:
        """Open the database again if a fault left it closed, or read-only and a write is coming."""
        if self._broken or (write and self._read_only):
            self._reopen()
            if self._broken or (write and self._read_only):
                raise fault(self.path, self._open_error, "opening the database for writing", NOTHING_CHANGED)

    def _reopen(self) -> None:
        with self._lock:
            with suppress(duckdb.Error):
                self._conn.close()
            for read_only in (False, True):
                try:
                    self._conn = duckdb.connect(str(self.path), read_only=read_only)
                except duckdb.Error as e:
                    self._open_error = e
                    log.warning("cannot open %s%s again: %s", self.path, " read-only" if read_only else "", e)
                    continue
                if read_only != self._read_only or self._broken:
                    log.warning("database %s opened again%s", self.path, " read-only" if read_only else "")
                self._read_only = read_only
                self._broken = False
                return
            self._broken = True

    @contextmanager
    def snapshot(self) -> Generator[duckdb.DuckDBPyConnection]:
        """A read-only view of one moment, on its own cursor: writers carry on meanwhile (DuckDB MVCC)."""
        with self._file_lock:
            with self._lock:
                self._usable(write=False)
                cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                yield cursor
                cursor.execute("COMMIT")
            finally:
                cursor.close()
