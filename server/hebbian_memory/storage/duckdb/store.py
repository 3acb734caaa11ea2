"""The Store: one owned DuckDB connection, its lifecycle (open, close, purge) and the query classes it joins.
Every SQL statement is in storage/. DuckDB is the source of truth."""

import logging
from collections.abc import Generator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

import duckdb

from hebbian_memory import files
from hebbian_memory.errors import DatabaseDamagedError, DatabaseLockedError, StorageError, StorageFaultError
from hebbian_memory.faults import fault
from hebbian_memory.storage.base import MemoryStore
from hebbian_memory.storage.duckdb import transfer
from hebbian_memory.storage.duckdb.core import NOTHING_CHANGED, PURGE_DUE
from hebbian_memory.storage.duckdb.episodes import EpisodeQueries
from hebbian_memory.storage.duckdb.imports import ImportQueries
from hebbian_memory.storage.duckdb.memories import MemoryQueries
from hebbian_memory.storage.duckdb.schema import migrate
from hebbian_memory.storage.duckdb.uses import UseQueries
from hebbian_memory.storage.duckdb.verify import damaged, probe_links, verify
from hebbian_memory.storage.rows import Changes, Counts

__all__ = ["CHECKPOINT_FAILED", "PURGE_FAILED", "Store"]

log = logging.getLogger(__name__)

CHECKPOINT_FAILED = (
    "The change itself is saved (in the database's write-ahead log), but that log could not be folded into the "
    "database file yet; it is, by itself, once the disk takes writes again."
)
PURGE_FAILED = "The database file was left as it was (whole); its rewrite is retried by itself."


class Store(MemoryQueries, EpisodeQueries, UseQueries, ImportQueries):
    """Thread-safe access to the database; every public method is one transaction."""

    def change_head(self) -> int:
        return 0  # one process writes a DuckDB file: its service sees every change it makes

    def changes(self, after: int) -> Changes:
        return Changes(0, frozenset(), frozenset(), frozenset())

    def trim_changes(self, keep: int) -> int:
        return 0

    @classmethod
    def open(cls, path: Path, now: datetime) -> "Store":
        """Open (creating if needed) and migrate the database at ``path``; an existing file is verified first."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # memories are private: owner only
        path.with_name(path.name + ".purge").unlink(missing_ok=True)  # an unfinished purge's copy
        existed = path.exists()
        with _opening(path, existed):
            if existed:
                verify(path)
            conn = duckdb.connect(str(path))
        try:
            if existed:
                probe_links(conn, path)  # before anything writes: the one index a read-only connection cannot read
            migrate(conn, now)
        except DatabaseDamagedError:
            conn.close()
            raise
        except duckdb.Error as e:
            conn.close()
            raise damaged(path, e) from e
        files.remove_leftovers(path)  # an unfinished purge's folder; the open database keeps other purgers out
        return cls(conn, path)

    def close(self) -> None:
        """Checkpoint and close. A disk refusing the checkpoint loses nothing: the WAL is replayed at the next open."""
        with self._lock:
            try:
                self._checkpoint(NOTHING_CHANGED)
            except StorageFaultError as e:
                log.error("closing the database without a checkpoint: %s", e)
            finally:
                with suppress(duckdb.Error):
                    self._conn.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (forget: so no deleted text lingers in the log)."""
        self._checkpoint(CHECKPOINT_FAILED)

    def purge(self) -> tuple[int, int]:
        """Rewrite the file so deleted rows leave no bytes behind; (size before, size after). A disk that refuses
        it leaves the old file in use, whole, with ``purge_due`` still set."""
        with self._file_lock, self._lock:
            self._usable(write=True)
            try:
                done = transfer.purge(self._conn, self.path)
            except (duckdb.Error, OSError) as e:
                transfer.discard_purge(self.path)  # a half-written copy would only take space
                self._reopen()  # the purge may have closed the connection, or the failure invalidated it
                raise fault(self.path, e, "rewriting the database file (the purge)", PURGE_FAILED) from e
            self._conn = done.connection
            try:  # the rewrite is in place; its flag's delete needs a new WAL, which a read-only dir refuses
                with self._tx() as c:
                    c.execute("DELETE FROM meta WHERE key = ?", [PURGE_DUE])
            except StorageFaultError as e:
                log.warning("database rewritten; its purge_due flag stays, so a later purge runs again: %s", e.problem)
                return done.bytes_before, done.bytes_after
            self._checkpoint(CHECKPOINT_FAILED)
            return done.bytes_before, done.bytes_after

    def get_meta(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = ?", [key])
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM memories")[0][0])

    def project_counts(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._fetch("SELECT project, count(*) FROM memories GROUP BY project")}

    def counts(self) -> Counts:
        """Memories and links per tier, links per kind."""
        memories = dict(self._fetch("SELECT tier, count(*) FROM memories GROUP BY tier"))
        links = dict(self._fetch("SELECT tier, count(*) FROM associations GROUP BY tier"))
        kinds = dict(self._fetch("SELECT kind, count(*) FROM associations GROUP BY kind"))
        return Counts(
            memories_by_tier={int(t): int(n) for t, n in memories.items()},
            links_by_tier={int(t): int(n) for t, n in links.items()},
            links_by_kind={str(k): int(n) for k, n in kinds.items()},
        )


# Checked by pyright (strict): the DuckDB store offers everything the service calls on a store.
_IS_A_MEMORY_STORE: type[MemoryStore] = Store


@contextmanager
def _opening(path: Path, existed: bool) -> Generator[None]:
    """DuckDB's errors while opening, as ours: another process's lock, a damaged file, or a file not creatable."""
    try:
        yield
    except duckdb.IOException as e:
        if "lock" in str(e).lower():  # DuckDB has no typed lock error; this is its only lock signal
            raise DatabaseLockedError(
                f"The database {path} is in use by another process ({e}). hebbian-memory servers share a "
                "data dir through its owner.lock; stop the program named here, or point this server at "
                "another data dir (--data-dir)."
            ) from e
        raise damaged(path, e) from e
    except duckdb.Error as e:  # corruption comes as the base class itself (e.g. a block's checksum)
        if existed:
            raise damaged(path, e) from e
        raise StorageError(f"Cannot create the database {path}: {e}") from e
