"""Import and export: sessions, memories and links as whole rows, their ids kept where free on import. Big
batches go in through COPY into a temporary table, then one INSERT ... SELECT."""

import json
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from hebbian_memory.storage.ids import assign_ids
from hebbian_memory.storage.postgres.core import Conn, PgCore, as_array, aware, vector_texts
from hebbian_memory.storage.postgres.links import use_row
from hebbian_memory.storage.postgres.schema import ROW_VERSION
from hebbian_memory.storage.postgres.shared import LINK_COLUMNS, LINKS, STORED, link_row, log_change
from hebbian_memory.storage.rows import Link, SessionRow, StoredMemory, Totals

__all__ = ["ImportQueries", "SnapshotRows"]

_SESSION_COLUMNS = "id, transport, client_name, client_version, project, started_at, ended_at"
_MEMORY_COLUMNS = (
    "id, project, content, content_hash, tags, metadata, importance, created_at, updated_at, event_time, "
    "last_accessed_at, access_count, strength, tier, session_id, replay_count, last_replayed_at, embedding_model, "
    "embedding"
)


_Table = Literal["memories", "sessions"]  # the tables whose ids an import keeps


def _aware_or_none(value: Any) -> Any:
    return None if value is None else aware(value)


class SnapshotRows:
    """The typed rows of one snapshot (``Transfer.export_rows``), read on its connection."""

    def __init__(self, conn: Conn, stream: Any) -> None:
        self._c = conn
        self._stream = stream

    def totals(self) -> Totals:
        row = self._c.execute(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM memories), "
            "(SELECT count(*) FROM associations)"
        ).fetchone()
        assert row is not None
        return Totals(int(row[0]), int(row[1]), int(row[2]))

    def schema_version(self) -> int:
        return ROW_VERSION

    def sessions(self) -> Iterator[SessionRow]:
        for rows in self._stream(self._c, f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY id", (), 5000):
            for r in rows:
                yield SessionRow(int(r[0]), r[1], r[2], r[3], r[4], aware(r[5]), _aware_or_none(r[6]))

    def memories(self, batch: int = 2000) -> Iterator[StoredMemory]:
        columns = ", ".join(f"m.{k.strip()}" for k in _MEMORY_COLUMNS.split(","))
        query = f"""SELECT {columns}, u.memory_id, u.uses, u.misleads, u.used_at, u.cue, u.cue_weight
                    FROM memories m LEFT JOIN memory_use u ON u.memory_id = m.id ORDER BY m.id"""
        for rows in self._stream(self._c, query, (), batch):
            for r in rows:
                yield StoredMemory(
                    int(r[0]), r[1], r[2], r[3], tuple(r[4]), r[5], float(r[6]), aware(r[7]), aware(r[8]),
                    aware(r[9]), aware(r[10]), int(r[11]), float(r[12]), int(r[13]),
                    None if r[14] is None else int(r[14]), int(r[15]), _aware_or_none(r[16]), r[17],
                    as_array(r[18]),
                    None if r[19] is None else use_row(r[19:]),
                )  # fmt: skip

    def links(self, batch: int = 10_000) -> Iterator[Link]:
        for rows in self._stream(self._c, f"SELECT {LINK_COLUMNS} FROM associations ORDER BY 1, 2", (), batch):
            yield from map(link_row, rows)


class ImportQueries(PgCore):
    """Rows of an export read out and written in."""

    @contextmanager
    def export_rows(self) -> Generator[SnapshotRows]:
        with self.snapshot("exporting the database") as c:
            yield SnapshotRows(c, self._stream)

    def import_sessions(self, rows: Sequence[SessionRow]) -> tuple[list[int], int]:
        with self._tx() as c:
            same = {
                int(r[0])
                for r in c.execute(
                    """SELECT s.id FROM sessions s
                       JOIN unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS u(id, started_at, client)
                       ON s.id = u.id AND s.started_at = u.started_at
                          AND s.client_name IS NOT DISTINCT FROM u.client""",
                    [[r.id for r in rows], [r.started_at for r in rows], [r.client_name for r in rows]],
                ).fetchall()
            }
            fresh = [r for r in rows if r.id not in same]
            ids = _assign_ids(c, "sessions", [r.id for r in fresh])
            c.execute(
                f"""INSERT INTO sessions ({_SESSION_COLUMNS})
                    SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                                         %s::timestamptz[], %s::timestamptz[])""",
                [
                    ids,
                    [r.transport for r in fresh],
                    [r.client_name for r in fresh],
                    [r.client_version for r in fresh],
                    [r.project for r in fresh],
                    [r.started_at for r in fresh],
                    [r.ended_at for r in fresh],
                ],
            )
            _advance_sequence(c, "sessions")
        new_of: dict[int, int] = dict(zip([r.id for r in fresh], ids, strict=True))
        return [new_of.get(r.id, r.id) for r in rows], len(rows) - len(fresh)

    def import_memories(self, rows: Sequence[StoredMemory]) -> list[int]:
        with self._storing() as c:
            ids = _assign_ids(c, "memories", [r.id for r in rows])
            _copy_memories(c, rows, ids)
            _advance_sequence(c, "memories")
            log_change(c, STORED, ids)
            used = [(i, r.use) for r, i in zip(rows, ids, strict=True) if r.use is not None]
            if used:
                c.execute(
                    """INSERT INTO memory_use (memory_id, uses, misleads, used_at, cue, cue_weight)
                       SELECT m, u, x, t, cue::vector, w
                       FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::timestamptz[], %s::text[],
                                   %s::float8[]) AS r(m, u, x, t, cue, w)""",
                    [
                        [i for i, _ in used],
                        [u.uses for _, u in used],
                        [u.misleads for _, u in used],
                        [u.used_at for _, u in used],
                        [None if u.cue is None else vector_texts([u.cue])[0] for _, u in used],
                        [u.cue_weight for _, u in used],
                    ],
                )
        return ids

    def import_links(self, rows: Sequence[Link]) -> set[tuple[int, int]]:
        if not rows:
            return set()
        first = list({(x.source_id, x.target_id): x for x in rows}.values())  # a pair named twice: its first
        with self._tx() as c:
            added = c.execute(
                f"""INSERT INTO associations ({LINK_COLUMNS})
                    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::smallint[], %s::text[],
                                         %s::integer[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
                        AS u(a, b, w, t, k, n, c, up, s)
                    WHERE a IN (SELECT id FROM memories) AND b IN (SELECT id FROM memories)
                    ON CONFLICT DO NOTHING
                    RETURNING source_id, target_id""",
                [
                    [x.source_id for x in first],
                    [x.target_id for x in first],
                    [x.weight for x in first],
                    [x.tier for x in first],
                    [x.kind for x in first],
                    [x.co_access_count for x in first],
                    [x.created_at for x in first],
                    [x.updated_at for x in first],
                    [x.last_strengthened_at for x in first],
                ],
            ).fetchall()
            log_change(c, LINKS, [int(end) for pair in added for end in pair])
        return {(int(a), int(b)) for a, b in added}


def _copy_memories(c: Conn, rows: Sequence[StoredMemory], ids: Sequence[int]) -> None:
    """COPY the rows into a temporary table (dropped at commit), then one INSERT ... SELECT."""
    c.execute(f"CREATE TEMP TABLE import_memories ON COMMIT DROP AS SELECT {_MEMORY_COLUMNS} FROM memories LIMIT 0")
    c.execute("ALTER TABLE import_memories ALTER COLUMN embedding TYPE text")
    c.execute("ALTER TABLE import_memories ALTER COLUMN metadata TYPE text")
    with c.cursor().copy(f"COPY import_memories ({_MEMORY_COLUMNS}) FROM STDIN") as copy:
        for r, i in zip(rows, ids, strict=True):
            copy.write_row(
                (
                    i, r.project, r.content, r.content_hash, list(r.tags), json.dumps(r.metadata, ensure_ascii=False),
                    r.importance, r.created_at, r.updated_at, r.event_time, r.last_accessed_at, r.access_count,
                    r.strength, r.tier, r.session_id, r.replay_count, r.last_replayed_at, r.embedding_model,
                    vector_texts([r.embedding])[0],
                )
            )  # fmt: skip
    select = _MEMORY_COLUMNS.replace("metadata,", "metadata::jsonb,").replace(
        "embedding_model, embedding", "embedding_model, embedding::vector"
    )
    c.execute(f"INSERT INTO memories ({_MEMORY_COLUMNS}) SELECT {select} FROM import_memories")


def _assign_ids(c: Conn, table: "_Table", wanted: Sequence[int | None]) -> list[int]:
    """``storage.ids.assign_ids`` with what is free in the table and its sequence."""
    asked = [i for i in wanted if i is not None]
    taken_rows = c.execute(f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[])", [asked]).fetchall()
    free = set(asked) - {int(r[0]) for r in taken_rows}
    return assign_ids(wanted, free, lambda n: [_next_id(c, table) for _ in range(n)])


def _next_id(c: Conn, table: "_Table") -> int:
    row = c.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table]).fetchone()
    assert row is not None
    return int(row[0])


def _advance_sequence(c: Conn, table: "_Table") -> None:
    """Move the table's id sequence past its largest id (ids kept by an import must never be handed out); it
    may skip a few ids, never reuse one."""
    c.execute(
        f"""SELECT setval(seq, greatest((SELECT coalesce(max(id), 0) FROM {table}), nextval(seq)))
            FROM (SELECT pg_get_serial_sequence(%s, 'id') AS seq) AS s""",
        [table],
    )
