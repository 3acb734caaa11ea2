"""Export and import for the in-memory store: whole rows out of one moment, and in with their ids kept where free."""

from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from hebbian_memory.errors import StoredMeanwhileError
from hebbian_memory.storage.ids import assign_ids
from hebbian_memory.storage.inmemory.core import InMemoryCore
from hebbian_memory.storage.inmemory.state import ROW_VERSION, Memory, State, stored_use, utc
from hebbian_memory.storage.rows import Link, SessionRow, StoredMemory, Totals

__all__ = ["InMemorySnapshot", "InMemoryTransfer"]


class InMemorySnapshot:
    """Every row of one moment (``Transfer.export_rows``): a state no write changes."""

    def __init__(self, state: State) -> None:
        self._s = state

    def totals(self) -> Totals:
        return Totals(len(self._s.sessions), len(self._s.memories), len(self._s.links))

    def schema_version(self) -> int:
        return ROW_VERSION

    def sessions(self) -> Iterator[SessionRow]:
        for i in sorted(self._s.sessions):
            yield self._s.sessions[i]

    def memories(self) -> Iterator[StoredMemory]:
        for i in sorted(self._s.memories):
            yield self._s.memories[i].stored(self._s.uses.get(i))

    def links(self) -> Iterator[Link]:
        for pair in sorted(self._s.links):
            yield self._s.links[pair]


class InMemoryTransfer(InMemoryCore):
    """Export snapshots and imports."""

    @contextmanager
    def export_rows(self) -> Generator[InMemorySnapshot]:
        with self._export_lock:
            yield InMemorySnapshot(self._read())

    def import_sessions(self, rows: Sequence[SessionRow]) -> tuple[list[int], int]:
        with self._write() as s:
            same: set[int] = set()
            for r in rows:
                stored = s.sessions.get(r.id)
                if stored and stored.started_at == utc(r.started_at) and stored.client_name == r.client_name:
                    same.add(r.id)
            fresh = [r for r in rows if r.id not in same]
            ids = _assign_ids(s, "sessions", [r.id for r in fresh])
            for r, i in zip(fresh, ids, strict=True):
                ended = None if r.ended_at is None else utc(r.ended_at)
                s.sessions[i] = replace(r, id=i, started_at=utc(r.started_at), ended_at=ended)
            s.advance("sessions")
        new_of = dict(zip([r.id for r in fresh], ids, strict=True))
        return [new_of.get(r.id, r.id) for r in rows], len(rows) - len(fresh)

    def import_memories(self, rows: Sequence[StoredMemory]) -> list[int]:
        with self._write() as s:
            if any((r.project, r.content_hash) in s.by_hash for r in rows):  # as a shared database refuses it
                raise StoredMeanwhileError("A memory with this text is already stored in the project.")
            ids = _assign_ids(s, "memories", [r.id for r in rows])
            for r, i in zip(rows, ids, strict=True):
                s.add_memory(Memory.of(r, i))
                if r.use is not None:
                    s.uses[i] = stored_use(r.use, i)
            s.advance("memories")
        return ids

    def import_links(self, rows: Sequence[Link]) -> set[tuple[int, int]]:
        added: set[tuple[int, int]] = set()
        with self._write() as s:
            for r in rows:
                pair = (r.source_id, r.target_id)
                if pair not in s.links and r.source_id in s.memories and r.target_id in s.memories:
                    s.write_links([r])
                    added.add(pair)
        return added


def _assign_ids(s: State, table: str, wanted: Sequence[int | None]) -> list[int]:
    """Each wanted id where free and not wanted earlier in the batch, else the sequence's next one that no wanted
    id of the batch holds (as the DuckDB store does)."""
    stored = s.memories if table == "memories" else s.sessions
    free = {i for i in wanted if i is not None and i not in stored}
    return assign_ids(wanted, free, lambda n: s.take_ids(table, n))
