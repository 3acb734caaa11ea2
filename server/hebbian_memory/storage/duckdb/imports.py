"""Import and export: sessions, memories and links as whole rows, their ids kept where free on import."""

from collections.abc import Generator, Sequence
from contextlib import contextmanager

import duckdb

from hebbian_memory.storage.duckdb import transfer
from hebbian_memory.storage.duckdb.core import StoreCore, naive
from hebbian_memory.storage.ids import assign_ids
from hebbian_memory.storage.rows import Link, SessionRow, StoredMemory

__all__ = ["ImportQueries"]


class ImportQueries(StoreCore):
    """Rows of an export read out and written in; the SQL itself is in ``transfer``."""

    @contextmanager
    def export_rows(self) -> Generator[transfer.SnapshotRows]:
        """Every row of one moment, on a snapshot's own cursor (writers carry on; a purge waits)."""
        with self.snapshot() as cursor:
            yield transfer.SnapshotRows(cursor)

    def import_sessions(self, rows: Sequence[SessionRow]) -> tuple[list[int], int]:
        """Sessions from an export; a session already here (same id, start and client) is matched, not copied.
        Ids are kept where free. Their ids here, in order, and how many were matched."""
        with self._tx() as c:
            same = {
                int(r[0])
                for r in c.execute(
                    """SELECT s.id FROM sessions s
                       JOIN (SELECT unnest($id::BIGINT[]) AS id, unnest($start::TIMESTAMP[]) AS started_at,
                                    unnest($client::VARCHAR[]) AS client) AS u
                       ON s.id = u.id AND s.started_at = u.started_at
                          AND s.client_name IS NOT DISTINCT FROM u.client""",
                    {
                        "id": [r.id for r in rows],
                        "start": [naive(r.started_at) for r in rows],
                        "client": [r.client_name for r in rows],
                    },
                ).fetchall()
            }
            fresh = [r for r in rows if r.id not in same]
            ids = self._assign_ids(c, "sessions", "session_id_seq", [r.id for r in fresh])
            transfer.insert_sessions(c, [transfer.session_columns(r, i) for r, i in zip(fresh, ids, strict=True)])
            transfer.advance_sequence(c, "session_id_seq", "sessions")
        new_of: dict[int, int] = dict(zip([r.id for r in fresh], ids, strict=True))
        return [new_of.get(r.id, r.id) for r in rows], len(rows) - len(fresh)

    def import_memories(self, rows: Sequence[StoredMemory]) -> list[int]:
        """Whole memory rows (each with a wanted id or None); their ids here, in order. Wanted ids are kept
        where free. The caller has checked that none duplicates a stored memory."""
        with self._tx() as c:
            ids = self._assign_ids(c, "memories", "memory_id_seq", [r.id for r in rows])
            transfer.insert_memories(c, [transfer.memory_columns(r, i) for r, i in zip(rows, ids, strict=True)])
            transfer.advance_sequence(c, "memory_id_seq", "memories")
            used = [(i, r.use) for r, i in zip(rows, ids, strict=True) if r.use is not None]
            if used:
                c.execute(
                    """INSERT INTO memory_use (memory_id, uses, misleads, used_at, cue, cue_weight)
                       SELECT unnest($m::BIGINT[]), unnest($u::DOUBLE[]), unnest($x::DOUBLE[]),
                           unnest($t::TIMESTAMP[]), unnest($c::FLOAT[][]), unnest($w::DOUBLE[])""",
                    {
                        "m": [i for i, _ in used],
                        "u": [row.uses for _, row in used],
                        "x": [row.misleads for _, row in used],
                        "t": [naive(row.used_at) for _, row in used],
                        "c": [None if row.cue is None else row.cue.tolist() for _, row in used],
                        "w": [row.cue_weight for _, row in used],
                    },
                )
        return ids

    def import_links(self, rows: Sequence[Link]) -> set[tuple[int, int]]:
        """Links not stored yet whose ends exist (an existing one is left as it is); the pairs added."""
        with self._tx() as c:
            return transfer.insert_links(c, [transfer.link_columns(r) for r in rows])

    @staticmethod
    def _assign_ids(c: duckdb.DuckDBPyConnection, table: str, sequence: str, wanted: Sequence[int | None]) -> list[int]:
        asked = [i for i in wanted if i is not None]
        free: set[int] = transfer.free_ids(c, table, asked) if asked else set()
        return assign_ids(wanted, free, lambda n: transfer.next_ids(c, sequence, n))
