"""SQL for export, import and purge: whole rows in and out, ids kept where they are free."""

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from hebbian_memory import files
from hebbian_memory.storage.duckdb.schema import SCHEMA_VERSION
from hebbian_memory.storage.rows import Link, SessionRow, StoredMemory, Totals, UseRow

__all__ = [
    "LINK_COLUMNS",
    "MEMORY_COLUMNS",
    "SESSION_COLUMNS",
    "USE_COLUMNS",
    "Purged",
    "SnapshotRows",
    "advance_sequence",
    "discard_purge",
    "free_ids",
    "insert_links",
    "insert_memories",
    "insert_sessions",
    "link_columns",
    "memory_columns",
    "next_ids",
    "purge",
    "session_columns",
]

SESSION_COLUMNS = ("id", "transport", "client_name", "client_version", "project", "started_at", "ended_at")
MEMORY_COLUMNS = (
    "id",
    "project",
    "content",
    "content_hash",
    "tags",
    "metadata",
    "importance",
    "created_at",
    "updated_at",
    "event_time",
    "last_accessed_at",
    "access_count",
    "strength",
    "tier",
    "session_id",
    "replay_count",
    "last_replayed_at",
    "embedding_model",
    "embedding",
)
USE_COLUMNS = (
    "uses",
    "misleads",
    "used_at",
    "cue",
    "cue_weight",
)  # a memory's use record (memory_use), exported with it when it has one
LINK_COLUMNS = (
    "source_id",
    "target_id",
    "weight",
    "tier",
    "kind",
    "co_access_count",
    "created_at",
    "updated_at",
    "last_strengthened_at",
)
_TIMES = frozenset(
    {"started_at", "ended_at", "created_at", "updated_at", "event_time", "last_accessed_at"}
    | {"last_replayed_at", "last_strengthened_at", "used_at"}
)


def _out(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A row as a dict with aware UTC times; the metadata column parsed."""
    out: dict[str, Any] = dict(zip(columns, row, strict=True))
    for name in _TIMES.intersection(columns):
        if out[name] is not None:
            out[name] = out[name].replace(tzinfo=UTC)
    if "metadata" in out:
        out["metadata"] = json.loads(out["metadata"])
    return out


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


class SnapshotRows:
    """The typed rows of one snapshot (``Transfer.export_rows``), read on its cursor."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._c = cursor

    def totals(self) -> Totals:
        def count(table: str) -> int:
            return int(self._c.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

        return Totals(count("sessions"), count("memories"), count("associations"))

    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def sessions(self) -> Iterator[SessionRow]:
        rows = self._c.execute(f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions ORDER BY id").fetchall()
        for r in rows:
            yield SessionRow(**_out(SESSION_COLUMNS, r))

    def memories(self, batch: int = 2000) -> Iterator[StoredMemory]:
        """Every memory in id order with its use record if it has one, ``batch`` rows at a time."""
        columns = ", ".join([*(f"m.{k}" for k in MEMORY_COLUMNS), *(f"u.{k}" for k in USE_COLUMNS)])
        last = 0
        while True:
            rows = self._c.execute(
                f"""SELECT {columns} FROM memories m LEFT JOIN memory_use u ON u.memory_id = m.id
                    WHERE m.id > ? ORDER BY m.id LIMIT ?""",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield _stored(_out((*MEMORY_COLUMNS, *USE_COLUMNS), r))
            last = int(rows[-1][0])

    def links(self, batch: int = 10_000) -> Iterator[Link]:
        self._c.execute(f"SELECT {', '.join(LINK_COLUMNS)} FROM associations ORDER BY 1, 2")
        while rows := self._c.fetchmany(batch):
            for r in rows:
                yield Link(**_out(LINK_COLUMNS, r))


def _stored(row: dict[str, Any]) -> StoredMemory:
    """A memory row (with its use columns, all None when it has no use record) as read by the export."""
    use = None
    if row["used_at"] is not None:
        cue = None if row["cue"] is None else np.asarray(row["cue"], dtype=np.float32)
        use = UseRow(row["id"], row["uses"], row["misleads"], row["used_at"], cue, row["cue_weight"])
    fields = {k: row[k] for k in MEMORY_COLUMNS}
    fields["tags"] = tuple(fields["tags"])
    fields["embedding"] = np.frombuffer(fields["embedding"], dtype="<f4")
    return StoredMemory(**fields, use=use)


def session_columns(row: SessionRow, new_id: int) -> dict[str, Any]:
    """A session as the columns ``insert_sessions`` writes, under ``new_id``."""
    return {k: new_id if k == "id" else getattr(row, k) for k in SESSION_COLUMNS}


def memory_columns(row: StoredMemory, new_id: int) -> dict[str, Any]:
    """A memory as the columns ``insert_memories`` writes, under ``new_id``."""
    out: dict[str, Any] = {k: getattr(row, k) for k in MEMORY_COLUMNS}
    out["id"] = new_id
    out["tags"] = list(row.tags)
    out["embedding"] = np.asarray(row.embedding, dtype="<f4").tobytes()
    return out


def link_columns(row: Link) -> dict[str, Any]:
    return {k: getattr(row, k) for k in LINK_COLUMNS}


def free_ids(c: duckdb.DuckDBPyConnection, table: str, wanted: Sequence[int]) -> set[int]:
    """Those of ``wanted`` no row of ``table`` uses."""
    taken = c.execute(f"SELECT id FROM {table} WHERE id IN (SELECT unnest(?::BIGINT[]))", [list(wanted)]).fetchall()
    return set(wanted) - {int(r[0]) for r in taken}


def next_ids(c: duckdb.DuckDBPyConnection, sequence: str, n: int) -> list[int]:
    return [int(r[0]) for r in c.execute(f"SELECT nextval('{sequence}') FROM range(?)", [n]).fetchall()]


def advance_sequence(c: duckdb.DuckDBPyConnection, sequence: str, table: str) -> None:
    """Move ``sequence`` past the largest id in ``table`` (ids kept by an import must never be handed out)."""
    row = c.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    largest = int(row[0]) if row else 0
    current = int(c.execute(f"SELECT nextval('{sequence}')").fetchall()[0][0])
    if current <= largest:
        c.execute(f"SELECT max(nextval('{sequence}')) FROM range(?)", [largest - current])


def insert_sessions(c: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    c.executemany(
        f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({', '.join('?' * len(SESSION_COLUMNS))})",
        [[_naive(r[k]) if k in _TIMES else r[k] for k in SESSION_COLUMNS] for r in rows],
    )


def insert_memories(c: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Whole memory rows (ids given), in one statement."""
    if not rows:
        return
    types = {
        "id": "BIGINT",
        "project": "VARCHAR",
        "content": "VARCHAR",
        "content_hash": "VARCHAR",
        "tags": "VARCHAR[]",
        "metadata": "VARCHAR",
        "importance": "DOUBLE",
        "access_count": "INTEGER",
        "strength": "DOUBLE",
        "tier": "TINYINT",
        "session_id": "BIGINT",
        "replay_count": "INTEGER",
        "embedding_model": "VARCHAR",
        "embedding": "BLOB",
    } | dict.fromkeys(_TIMES, "TIMESTAMP")
    columns = ", ".join(MEMORY_COLUMNS)
    selects = ", ".join(f"unnest(${k}::{types[k]}[])" for k in MEMORY_COLUMNS)
    params: dict[str, list[Any]] = {}
    for k in MEMORY_COLUMNS:
        if k in _TIMES:
            params[k] = [_naive(r[k]) for r in rows]
        elif k == "metadata":
            params[k] = [json.dumps(r[k], ensure_ascii=False) for r in rows]
        else:
            params[k] = [r[k] for r in rows]
    c.execute(f"INSERT INTO memories ({columns}) SELECT {selects}", params)


def insert_links(c: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> set[tuple[int, int]]:
    """Links not yet stored whose ends both exist (an existing link is kept as it is); the pairs added."""
    if not rows:
        return set()
    types = {"source_id": "BIGINT", "target_id": "BIGINT", "weight": "DOUBLE", "tier": "TINYINT"}
    types |= {"kind": "VARCHAR", "co_access_count": "INTEGER"} | dict.fromkeys(_TIMES, "TIMESTAMP")
    columns = ", ".join(LINK_COLUMNS)
    selects = ", ".join(f"unnest(${k}::{types[k]}[]) AS {k}" for k in LINK_COLUMNS)
    params = {k: [_naive(r[k]) if k in _TIMES else r[k] for r in rows] for k in LINK_COLUMNS}
    added = c.execute(
        f"""INSERT INTO associations ({columns})
            SELECT {columns} FROM (SELECT {selects})
            WHERE source_id IN (SELECT id FROM memories) AND target_id IN (SELECT id FROM memories)
            ON CONFLICT DO NOTHING
            RETURNING source_id, target_id""",
        params,
    ).fetchall()
    return {(int(a), int(b)) for a, b in added}


@dataclass(frozen=True, slots=True)
class Purged:
    connection: duckdb.DuckDBPyConnection
    bytes_before: int
    bytes_after: int


def purge(conn: duckdb.DuckDBPyConnection, path: Path) -> Purged:
    """Copy the database into a fresh file and swap it in, so deleted rows' bytes are gone from disk (DuckDB
    leaves them in free blocks). ``conn`` is closed; the returned connection is open on the new file. DuckDB opens
    the copy by name, so it is made in a private folder beside the file (``files``), never at a name someone could
    plant; a crash before the swap leaves the old file whole, and that folder, which the next start removes."""
    catalog = str(conn.execute("SELECT current_database()").fetchall()[0][0]).replace('"', '""')
    before = path.stat().st_size
    conn.execute("CHECKPOINT")
    with files.private_folder(path) as folder:
        fresh = folder / path.name
        conn.execute(f"ATTACH '{_sql_string(fresh)}' AS hebbian_purge")
        try:
            conn.execute(f'COPY FROM DATABASE "{catalog}" TO hebbian_purge')
        finally:
            conn.execute("DETACH hebbian_purge")
        conn.close()
        files.move_into_place(fresh, path)
    _fsync_dir(path.parent)
    return Purged(duckdb.connect(str(path)), before, path.stat().st_size)


def discard_purge(path: Path) -> None:
    """Remove what an unfinished purge of ``path`` left (its copy and the copy's WAL)."""
    fresh = path.with_name(path.name + ".purge")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        with suppress(OSError):
            leftover.unlink(missing_ok=True)


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a directory for fsync; os.replace is durable there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
