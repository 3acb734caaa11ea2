"""The Store: one owned DuckDB connection and every SQL statement. DuckDB is the source of truth."""

import json
import logging
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt

from hebbian_memory.errors import DatabaseDamagedError, DatabaseLockedError, StorageError
from hebbian_memory.storage import transfer
from hebbian_memory.storage.schema import migrate

log = logging.getLogger(__name__)

_MEMORY_COLUMNS = "id, content, tags, metadata, importance, created_at, updated_at, event_time, access_count"


def _naive(ts: datetime) -> datetime:
    """Database times are naive UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewMemory:
    content: str
    content_hash: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    importance: float
    event_time: datetime
    embedding: npt.NDArray[np.float32]
    embedding_model: str
    session_id: int | None
    project: str = "default"


@dataclass(frozen=True, slots=True)
class Link:
    """A link as stored (``source_id < target_id``); ``weight`` is as of ``updated_at``."""

    source_id: int
    target_id: int
    weight: float
    tier: int
    kind: str
    co_access_count: int
    created_at: datetime
    updated_at: datetime
    last_strengthened_at: datetime


@dataclass(frozen=True, slots=True)
class MemoryState:
    """What the consolidation pass needs of a memory."""

    id: int
    tier: int
    uses: int  # accesses plus replays
    importance: float
    last_use: datetime  # the later of the last access and the last replay
    last_replayed: datetime | None
    strength: float


@dataclass(frozen=True, slots=True)
class Chain:
    """New memories continue an episode: link them in order, the first to ``after`` (if any)."""

    after: int | None
    weight: float


@dataclass(frozen=True, slots=True)
class Filters:
    """What a memory must match: all of ``tags``, an event time in [since, until], and the project (None: any)."""

    tags: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.tags) or self.since is not None or self.until is not None or self.project is not None


@dataclass(frozen=True, slots=True)
class MemoryRow:
    id: int
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    created_at: datetime
    updated_at: datetime
    event_time: datetime
    access_count: int


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A memory with the text of its neighbours in the same session (None at an episode's ends)."""

    id: int
    content: str
    event_time: datetime
    metadata: dict[str, Any]
    previous: str | None
    next: str | None
    previous_id: int | None = None


class Store:
    """Thread-safe access to the database; every public method is one transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        # Held by a snapshot reader (export) on its own cursor and by purge, which swaps the file under it.
        self._file_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, now: datetime) -> "Store":
        """Open (creating if needed) and migrate the database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # memories are private: owner only
        path.with_name(path.name + ".purge").unlink(missing_ok=True)  # an unfinished purge's copy
        existed = path.exists()
        try:
            conn = duckdb.connect(str(path))
        except duckdb.IOException as e:
            if "lock" in str(e).lower():  # DuckDB has no typed lock error; this is its only lock signal
                raise DatabaseLockedError(
                    f"The database {path} is in use by another process ({e}). hebbian-memory servers share a "
                    "data dir through its owner.lock; stop the program named here, or point this server at "
                    "another data dir (--data-dir)."
                ) from e
            raise _damaged(path, e) from e
        except (duckdb.SerializationException, duckdb.InternalException, duckdb.InvalidInputException) as e:
            if existed:
                raise _damaged(path, e) from e
            raise StorageError(f"Cannot create the database {path}: {e}") from e
        try:
            migrate(conn, now)
        except duckdb.Error as e:
            conn.close()
            raise _damaged(path, e) from e
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("CHECKPOINT")
            finally:
                self._conn.close()

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

    # --- meta and sessions -------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = ?", [key])
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str, now: datetime
    ) -> int:
        with self._tx() as c:
            row = c.execute(
                "INSERT INTO sessions (transport, client_name, client_version, project, started_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                [transport, client_name, client_version, project, _naive(now)],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def end_session(self, session_id: int, now: datetime) -> None:
        with self._tx() as c:
            c.execute("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", [_naive(now), session_id])

    def last_of_session(self, session_id: int, before_id: int) -> tuple[int, str] | None:
        """The id and text of the newest memory of a session stored before ``before_id``."""
        rows = self._fetch(
            "SELECT id, content FROM memories WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
            [session_id, before_id],
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    # --- memories ----------------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM memories")[0][0])

    def insert(self, memories: Sequence[NewMemory], now: datetime, chain: Chain | None = None) -> list[int]:
        """Insert memories in one transaction, with a 'remembered' event each; their ids, in order. With
        ``chain``, they are also linked one after another (and the first to ``chain.after``): temporal links."""
        if not memories:
            return []
        ts = _naive(now)
        with self._tx() as c:
            ids = [self._insert_one(c, memories[0], ts)] if len(memories) == 1 else self._insert_many(c, memories, ts)
            if chain is not None:
                # Each pair ends in a new memory, so none can exist yet: a plain insert, no conflict check.
                pairs = [(a, b) for a, b in zip([chain.after, *ids[:-1]], ids, strict=True) if a is not None]
                if len(pairs) == 1:
                    c.execute(
                        "INSERT INTO associations VALUES (?, ?, ?, 1, 'temporal', 0, ?, ?, ?)",
                        [*pairs[0], chain.weight, ts, ts, ts],
                    )
                elif pairs:
                    c.execute(
                        """INSERT INTO associations
                           SELECT unnest($a::BIGINT[]), unnest($b::BIGINT[]), $w, 1, 'temporal', 0, $now, $now, $now""",
                        {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs], "w": chain.weight, "now": ts},
                    )
        return ids

    def _insert_many(self, c: duckdb.DuckDBPyConnection, memories: Sequence[NewMemory], ts: datetime) -> list[int]:
        ids = [
            int(r[0]) for r in c.execute("SELECT nextval('memory_id_seq') FROM range(?)", [len(memories)]).fetchall()
        ]
        # Column lists unnested in one statement: about ten times faster than executemany in DuckDB.
        c.execute(
            """INSERT INTO memories (id, content, content_hash, tags, metadata, importance, created_at,
                   updated_at, event_time, last_accessed_at, access_count, strength, tier, session_id,
                   embedding, embedding_model, project)
               SELECT unnest($ids::BIGINT[]), unnest($content::VARCHAR[]), unnest($hash::VARCHAR[]),
                   unnest($tags::VARCHAR[][]), unnest($metadata::VARCHAR[]), unnest($importance::DOUBLE[]),
                   $now, $now, unnest($event_time::TIMESTAMP[]), $now, 0, 1.0, 1, unnest($session::BIGINT[]),
                   unnest($embedding::BLOB[]), unnest($model::VARCHAR[]), unnest($project::VARCHAR[])""",
            {
                "ids": ids,
                "content": [m.content for m in memories],
                "hash": [m.content_hash for m in memories],
                "tags": [list(m.tags) for m in memories],
                "metadata": [json.dumps(m.metadata, ensure_ascii=False) for m in memories],
                "importance": [float(m.importance) for m in memories],
                "now": ts,
                "event_time": [_naive(m.event_time) for m in memories],
                "session": [m.session_id for m in memories],
                "embedding": [m.embedding.astype("<f4").tobytes() for m in memories],
                "model": [m.embedding_model for m in memories],
                "project": [m.project for m in memories],
            },
        )
        c.execute(
            """INSERT INTO access_events (memory_id, session_id, kind, occurred_at)
               SELECT unnest($ids::BIGINT[]), unnest($session::BIGINT[]), 'remembered', $now""",
            {"ids": ids, "session": [m.session_id for m in memories], "now": ts},
        )
        return ids

    def _insert_one(self, c: duckdb.DuckDBPyConnection, m: NewMemory, ts: datetime) -> int:
        """The single-memory case of :meth:`insert` (each remember call): plain VALUES, 1.5 ms faster."""
        row = c.execute(
            """INSERT INTO memories (content, content_hash, tags, metadata, importance, created_at, updated_at,
                   event_time, last_accessed_at, access_count, strength, tier, session_id, embedding,
                   embedding_model, project)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1.0, 1, ?, ?, ?, ?) RETURNING id""",
            [
                m.content,
                m.content_hash,
                list(m.tags),
                json.dumps(m.metadata, ensure_ascii=False),
                m.importance,
                ts,
                ts,
                _naive(m.event_time),
                ts,
                m.session_id,
                m.embedding.astype("<f4").tobytes(),
                m.embedding_model,
                m.project,
            ],
        ).fetchone()
        assert row is not None
        c.execute(
            "INSERT INTO access_events (memory_id, session_id, kind, occurred_at) VALUES (?, ?, 'remembered', ?)",
            [row[0], m.session_id, ts],
        )
        return int(row[0])

    def ids_by_hash(self, hashes: Sequence[str], project: str) -> dict[str, int]:
        """Ids of the memories of ``project`` with these content hashes (looked up by hash alone, the fast
        index; the project is checked on the few rows found)."""
        if len(hashes) == 1:
            sql, param = "SELECT content_hash, id, project FROM memories WHERE content_hash = ?", hashes[0]
        else:
            sql, param = (
                "SELECT content_hash, id, project FROM memories WHERE content_hash IN (SELECT unnest(?))",
                list(hashes),
            )
        return {str(r[0]): int(r[1]) for r in self._fetch(sql, [param]) if r[2] == project}

    def reinforce(
        self, memory_id: int, tags: Sequence[str], importance: float, session_id: int | None, now: datetime
    ) -> None:
        """An exact duplicate was remembered again: count the access, merge tags, keep the higher importance."""
        ts = _naive(now)
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET access_count = access_count + 1, last_accessed_at = ?, updated_at = ?,
                       strength = 1.0, importance = greatest(importance, ?),
                       tags = list_distinct(list_concat(tags, ?::VARCHAR[]))
                   WHERE id = ?""",
                [ts, ts, importance, list(tags), memory_id],
            )
            c.execute(
                "INSERT INTO access_events (memory_id, session_id, kind, occurred_at) VALUES (?, ?, 'reinforced', ?)",
                [memory_id, session_id, ts],
            )

    def get(self, ids: Sequence[int]) -> dict[int, MemoryRow]:
        if not ids:
            return {}
        rows = self._fetch(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id IN (SELECT unnest(?))", [list(ids)])
        return {
            int(r[0]): MemoryRow(
                id=int(r[0]),
                content=r[1],
                tags=sorted(r[2]),
                metadata=json.loads(r[3]),
                importance=float(r[4]),
                created_at=_aware(r[5]),
                updated_at=_aware(r[6]),
                event_time=_aware(r[7]),
                access_count=int(r[8]),
            )
            for r in rows
        }

    def recent(self, limit: int, project: str) -> list[int]:
        """Ids of the newest memories of ``project``, newest first."""
        rows = self._fetch("SELECT id FROM memories WHERE project = ? ORDER BY id DESC LIMIT ?", [project, limit])
        return [int(r[0]) for r in rows]

    def missing(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that name no memory."""
        found = self._fetch("SELECT id FROM memories WHERE id IN (SELECT unnest(?))", [list(ids)])
        return set(ids) - {int(r[0]) for r in found}

    def all_ids(self) -> npt.NDArray[np.int64]:
        rows = self._fetch("SELECT id FROM memories ORDER BY id")
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def embeddings(self, ids: Sequence[int], dim: int) -> npt.NDArray[np.float32]:
        """Stored vectors of ``ids``, in the order given."""
        rows = dict(self._fetch("SELECT id, embedding FROM memories WHERE id IN (SELECT unnest(?))", [list(ids)]))
        out = np.empty((len(ids), dim), dtype=np.float32)
        for i, memory_id in enumerate(ids):
            out[i] = np.frombuffer(rows[memory_id], dtype="<f4")
        return out

    def iter_contents(self, batch: int = 5000) -> Iterator[list[tuple[int, str]]]:
        """All (id, content) pairs in id order, in batches."""
        last = 0
        while True:
            rows = self._fetch("SELECT id, content FROM memories WHERE id > ? ORDER BY id LIMIT ?", [last, batch])
            if not rows:
                return
            yield [(int(r[0]), str(r[1])) for r in rows]
            last = int(rows[-1][0])

    def documents(self, session_ids: Sequence[int] | None = None) -> list[DocumentRow]:
        """Every memory (or those of the given sessions) with its episodic neighbours, in id order."""
        where = "" if session_ids is None else "WHERE session_id IN (SELECT unnest(?))"
        rows = self._fetch(
            f"""SELECT id, content, event_time, metadata, {_EPISODE}
                FROM memories {where}
                WINDOW episode AS (PARTITION BY session_id ORDER BY id)
                ORDER BY id""",
            [] if session_ids is None else [list(session_ids)],
        )
        return [_document(r) for r in rows]

    def iter_documents(self, batch: int) -> Iterator[list[DocumentRow]]:
        """Every memory with its episodic neighbours, in id order, ``batch`` at a time from one snapshot: a
        rebuild holds one batch of rows in Python, not the whole store (at 100,000 memories, 110 MB). The episode
        window runs over ids alone; texts are read a range of ids at a time (a window over the texts made DuckDB
        hold them all at once: at 100,000 memories the process held 399 MB after the read, 334 MB now)."""
        with self.snapshot() as cursor:
            cursor.execute(
                """SELECT id,
                       CASE WHEN session_id IS NULL THEN -1 ELSE coalesce(lag(id) OVER episode, -1) END AS previous,
                       CASE WHEN session_id IS NULL THEN -1 ELSE coalesce(lead(id) OVER episode, -1) END AS following
                   FROM memories WINDOW episode AS (PARTITION BY session_id ORDER BY id) ORDER BY id"""
            )
            columns = cast("dict[str, Any]", cursor.fetchnumpy())  # pyright: ignore[reportUnknownMemberType] -- partly untyped
            ids, previous, following = (
                np.asarray(columns[name], dtype=np.int64) for name in ("id", "previous", "following")
            )
            for start in range(0, len(ids), batch):
                end = min(start + batch, len(ids))
                rows = cursor.execute(
                    "SELECT id, content, event_time, metadata FROM memories WHERE id BETWEEN ? AND ? ORDER BY id",
                    [int(ids[start]), int(ids[end - 1])],
                ).fetchall()
                texts = {int(r[0]): str(r[1]) for r in rows}
                around = {int(i) for i in (*previous[start:end], *following[start:end]) if i >= 0 and i not in texts}
                if around:
                    texts.update(
                        cursor.execute(
                            "SELECT id, content FROM memories WHERE id IN (SELECT unnest(?))", [sorted(around)]
                        ).fetchall()
                    )
                yield [
                    _document((*r, texts.get(int(before)), texts.get(int(after)), None if before < 0 else before))
                    for r, before, after in zip(rows, previous[start:end], following[start:end], strict=True)
                ]

    def documents_around(self, ids: Sequence[int]) -> list[DocumentRow]:
        """The memories ``ids`` and their neighbours in their sessions (whose context they are), with their
        own neighbours: what to keyword-index after ``ids`` were inserted. The episode window runs in DuckDB;
        only these rows come back."""
        rows = self._fetch(
            f"""WITH e AS (
                    SELECT id, content, event_time, metadata, {_EPISODE},
                        CASE WHEN session_id IS NULL THEN NULL ELSE lead(id) OVER episode END AS next_id
                    FROM memories
                    WHERE id IN (SELECT unnest($ids))
                       OR session_id IN (SELECT session_id FROM memories WHERE id IN (SELECT unnest($ids)))
                    WINDOW episode AS (PARTITION BY session_id ORDER BY id))
                SELECT id, content, event_time, metadata, previous_text, next_text, previous_id FROM e
                WHERE id IN (SELECT unnest($ids))
                   OR id IN (SELECT previous_id FROM e WHERE id IN (SELECT unnest($ids)))
                   OR id IN (SELECT next_id FROM e WHERE id IN (SELECT unnest($ids)))
                ORDER BY id""",
            {"ids": list(ids)},
        )
        return [_document(r) for r in rows]

    def sessions_of(self, ids: Sequence[int]) -> set[int]:
        rows = self._fetch(
            "SELECT DISTINCT session_id FROM memories WHERE id IN (SELECT unnest(?)) AND session_id IS NOT NULL",
            [list(ids)],
        )
        return {int(r[0]) for r in rows}

    def models_in_use(self) -> set[str]:
        return {str(r[0]) for r in self._fetch("SELECT DISTINCT embedding_model FROM memories")}

    def replace_embeddings(self, vectors: dict[int, npt.NDArray[np.float32]], model: str) -> None:
        with self._tx() as c:
            c.executemany(
                "UPDATE memories SET embedding = ?, embedding_model = ? WHERE id = ?",
                [[v.astype("<f4").tobytes(), model, i] for i, v in vectors.items()],
            )

    def project_counts(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._fetch("SELECT project, count(*) FROM memories GROUP BY project")}

    def filter_ids(self, filters: Filters, limit: int) -> list[int] | None:
        """Ids matching every filter, or None when more than ``limit`` match."""
        where, params = _filters(filters)
        rows = self._fetch(f"SELECT id FROM memories WHERE {where} LIMIT ?", [*params, limit + 1])
        return None if len(rows) > limit else [int(r[0]) for r in rows]

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        """Those of ``ids`` that pass every filter."""
        if not ids:
            return set()
        where, params = _filters(filters)
        rows = self._fetch(f"SELECT id FROM memories WHERE id IN (SELECT unnest(?)) AND {where}", [list(ids), *params])
        return {int(r[0]) for r in rows}

    def select_for_forget(
        self, ids: Sequence[int] | None, tags: Sequence[str], before: datetime | None, project: str | None
    ) -> list[int]:
        """Ids matching every given criterion (ids, all tags, created before, in the project)."""
        where, params = _filters(Filters(tags=tags, project=project))
        if ids is not None:
            where += " AND id IN (SELECT unnest(?))"
            params.append(list(ids))
        if before is not None:
            where += " AND created_at < ?"
            params.append(_naive(before))
        return [int(r[0]) for r in self._fetch(f"SELECT id FROM memories WHERE {where} ORDER BY id", params)]

    def delete(self, ids: Sequence[int], purge_due: bool = False) -> None:
        """Delete memories with their links and access events, then checkpoint so no text lingers in the WAL.
        With ``purge_due``, the same transaction notes that the file still holds the deleted bytes (see
        :meth:`purge`), so a crash before the purge is caught up at the next start."""
        if not ids:
            return
        id_list = list(ids)
        with self._tx() as c:
            if purge_due:
                c.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", [PURGE_DUE])
            c.execute(
                "DELETE FROM associations WHERE source_id IN (SELECT unnest(?)) OR target_id IN (SELECT unnest(?))",
                [id_list, id_list],
            )
            c.execute("DELETE FROM access_events WHERE memory_id IN (SELECT unnest(?))", [id_list])
            c.execute("DELETE FROM memories WHERE id IN (SELECT unnest(?))", [id_list])
        with self._lock:
            self._conn.execute("CHECKPOINT")

    def purge(self) -> tuple[int, int]:
        """Rewrite the file so deleted rows leave no bytes behind; (size before, size after)."""
        with self._file_lock, self._lock:
            done = transfer.purge(self._conn, self.path)
            self._conn = done.connection
            self._conn.execute("DELETE FROM meta WHERE key = ?", [PURGE_DUE])
            self._conn.execute("CHECKPOINT")
            return done.bytes_before, done.bytes_after

    # --- export and import ---------------------------------------------------------------------------------

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

    def import_sessions(self, rows: Sequence[dict[str, Any]]) -> tuple[list[int], int]:
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
                        "id": [r["id"] for r in rows],
                        "start": [_naive(r["started_at"]) for r in rows],
                        "client": [r["client_name"] for r in rows],
                    },
                ).fetchall()
            }
            fresh = [r for r in rows if r["id"] not in same]
            ids = self._assign_ids(c, "sessions", "session_id_seq", [r["id"] for r in fresh])
            transfer.insert_sessions(c, [{**r, "id": i} for r, i in zip(fresh, ids, strict=True)])
            transfer.advance_sequence(c, "session_id_seq", "sessions")
        new_of: dict[int, int] = dict(zip([int(r["id"]) for r in fresh], ids, strict=True))
        return [new_of.get(int(r["id"]), int(r["id"])) for r in rows], len(rows) - len(fresh)

    def import_memories(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Whole memory rows (each with a wanted id or None); their ids here, in order. Wanted ids are kept
        where free. The caller has checked that none duplicates a stored memory."""
        with self._tx() as c:
            ids = self._assign_ids(c, "memories", "memory_id_seq", [r["id"] for r in rows])
            transfer.insert_memories(c, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
            transfer.advance_sequence(c, "memory_id_seq", "memories")
        return ids

    def import_links(self, rows: Sequence[dict[str, Any]]) -> set[tuple[int, int]]:
        """Links not stored yet whose ends exist (an existing one is left as it is); the pairs added."""
        with self._tx() as c:
            return transfer.insert_links(c, rows)

    @staticmethod
    def _assign_ids(c: duckdb.DuckDBPyConnection, table: str, sequence: str, wanted: Sequence[int | None]) -> list[int]:
        asked = [i for i in wanted if i is not None]
        free: set[int] = transfer.free_ids(c, table, asked) if asked else set()
        taken: set[int] = set()
        keep: list[bool] = []
        for i in wanted:
            keep.append(i is not None and i in free and i not in taken)
            if i is not None:
                taken.add(i)
        fresh = iter(transfer.next_ids(c, sequence, keep.count(False)))
        # A fresh id may equal a wanted id kept in this same batch: skip those.
        out: list[int] = []
        for i, kept in zip(wanted, keep, strict=True):
            if kept and i is not None:
                out.append(i)
                continue
            new = next(fresh, None)
            while new is None or new in taken:
                new = transfer.next_ids(c, sequence, 1)[0]
            taken.add(new)
            out.append(new)
        return out

    # --- associations ------------------------------------------------------------------------------------

    def graph(self, batch: int = 10_000) -> Iterator[tuple[int, int, float, str]]:
        """(source, target, weight, kind) of every link, the few columns recall's graph needs, read ``batch`` at a
        time from one snapshot: all at once, the rows' Python objects left 17 MB more held at 100,000 links."""
        with self.snapshot() as cursor:
            cursor.execute("SELECT source_id, target_id, weight, kind FROM associations")
            while rows := cursor.fetchmany(batch):
                yield from rows

    def all_links(self) -> list[Link]:
        return [_link(r) for r in self._fetch(f"SELECT {_LINK_COLUMNS} FROM associations")]

    def links_between(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Link]:
        """The stored links among these (low id, high id) pairs."""
        if not pairs:
            return {}
        rows = self._fetch(
            f"""SELECT {_LINK_COLUMNS} FROM associations
                WHERE (source_id, target_id) IN (SELECT (unnest(?::BIGINT[]), unnest(?::BIGINT[])))""",
            [[a for a, _ in pairs], [b for _, b in pairs]],
        )
        return {(link.source_id, link.target_id): link for link in map(_link, rows)}

    def save_links(
        self,
        links: Sequence[Link],
        delete: Sequence[tuple[int, int]] = (),
        events: Sequence[tuple[int, int | None, str, datetime]] = (),
    ) -> None:
        """Write links whole (insert or replace), delete others and record access events, in one transaction."""
        with self._tx() as c:
            if events:
                self._insert_events(c, events)
            if delete:
                c.execute(
                    """DELETE FROM associations WHERE (source_id, target_id) IN
                       (SELECT (unnest(?::BIGINT[]), unnest(?::BIGINT[])))""",
                    [[a for a, _ in delete], [b for _, b in delete]],
                )
            if links:
                c.execute(
                    f"""INSERT OR REPLACE INTO associations ({_LINK_COLUMNS})
                        SELECT unnest($a::BIGINT[]), unnest($b::BIGINT[]), unnest($w::DOUBLE[]),
                            unnest($tier::TINYINT[]), unnest($kind::VARCHAR[]), unnest($n::INTEGER[]),
                            unnest($created::TIMESTAMP[]), unnest($updated::TIMESTAMP[]),
                            unnest($strengthened::TIMESTAMP[])""",
                    {
                        "a": [x.source_id for x in links],
                        "b": [x.target_id for x in links],
                        "w": [x.weight for x in links],
                        "tier": [x.tier for x in links],
                        "kind": [x.kind for x in links],
                        "n": [x.co_access_count for x in links],
                        "created": [_naive(x.created_at) for x in links],
                        "updated": [_naive(x.updated_at) for x in links],
                        "strengthened": [_naive(x.last_strengthened_at) for x in links],
                    },
                )

    def record_events(self, events: Sequence[tuple[int, int | None, str, datetime]]) -> None:
        """Access events (memory id, session id, kind, time) in one statement."""
        if events:
            with self._tx() as c:
                self._insert_events(c, events)

    def _insert_events(
        self, c: duckdb.DuckDBPyConnection, events: Sequence[tuple[int, int | None, str, datetime]]
    ) -> None:
        c.execute(
            """INSERT INTO access_events (memory_id, session_id, kind, occurred_at)
               SELECT m, s, k, t FROM (SELECT unnest($m::BIGINT[]) AS m, unnest($s::BIGINT[]) AS s,
                                              unnest($k::VARCHAR[]) AS k, unnest($t::TIMESTAMP[]) AS t)
               WHERE m IN (SELECT id FROM memories)  -- not for memories forgotten since""",
            {
                "m": [e[0] for e in events],
                "s": [e[1] for e in events],
                "k": [e[2] for e in events],
                "t": [_naive(e[3]) for e in events],
            },
        )
        recalled = [(e[0], _naive(e[3])) for e in events if e[2] == "recalled"]
        if recalled:  # being recalled is an access: it counts as a use and restores strength
            c.execute(
                """UPDATE memories SET last_accessed_at = greatest(last_accessed_at, u.t),
                       access_count = access_count + u.n
                   FROM (SELECT m, max(t) AS t, count(*) AS n
                         FROM (SELECT unnest($m::BIGINT[]) AS m, unnest($t::TIMESTAMP[]) AS t) GROUP BY m) AS u
                   WHERE memories.id = u.m""",
                {"m": [r[0] for r in recalled], "t": [r[1] for r in recalled]},
            )

    def memory_states(self) -> list[MemoryState]:
        rows = self._fetch(
            """SELECT id, tier, access_count + replay_count, importance,
                      greatest(last_accessed_at, coalesce(last_replayed_at, last_accessed_at)), last_replayed_at,
                      strength
               FROM memories"""
        )
        return [
            MemoryState(int(r[0]), int(r[1]), int(r[2]), float(r[3]), _aware(r[4]), r[5] and _aware(r[5]), float(r[6]))
            for r in rows
        ]

    def set_memory_states(self, ids: Sequence[int], strengths: Sequence[float], tiers: Sequence[int]) -> None:
        if not ids:
            return
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET strength = u.strength, tier = u.tier
                   FROM (SELECT unnest($i::BIGINT[]) AS id, unnest($s::DOUBLE[]) AS strength,
                                unnest($t::TINYINT[]) AS tier) AS u
                   WHERE memories.id = u.id""",
                {"i": list(ids), "s": list(strengths), "t": list(tiers)},
            )

    def mark_replayed(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET last_replayed_at = ?, replay_count = replay_count + 1
                   WHERE id IN (SELECT unnest(?::BIGINT[]))""",
                [_naive(now), list(ids)],
            )

    def counts(self) -> dict[str, Any]:
        """Memories and links per tier, links per kind."""
        memories = dict(self._fetch("SELECT tier, count(*) FROM memories GROUP BY tier"))
        links = dict(self._fetch("SELECT tier, count(*) FROM associations GROUP BY tier"))
        kinds = dict(self._fetch("SELECT kind, count(*) FROM associations GROUP BY kind"))
        return {
            "memories_by_tier": {int(t): int(n) for t, n in memories.items()},
            "links_by_tier": {int(t): int(n) for t, n in links.items()},
            "links_by_kind": {str(k): int(n) for k, n in kinds.items()},
        }

    def links_of(self, memory_id: int) -> list[Link]:
        """Every link touching ``memory_id``."""
        rows = self._fetch(
            f"SELECT {_LINK_COLUMNS} FROM associations WHERE source_id = ? OR target_id = ? ORDER BY 1, 2",
            [memory_id, memory_id],
        )
        return [_link(r) for r in rows]


PURGE_DUE = "purge_due"
# A memory's neighbours in its session (none for a memory without one): (previous text, next text, previous id).
_EPISODE = """CASE WHEN session_id IS NULL THEN NULL ELSE lag(content) OVER episode END AS previous_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lead(content) OVER episode END AS next_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lag(id) OVER episode END AS previous_id"""


def _document(r: tuple[Any, ...]) -> DocumentRow:
    return DocumentRow(int(r[0]), r[1], _aware(r[2]), json.loads(r[3]), r[4], r[5], None if r[6] is None else int(r[6]))


_LINK_COLUMNS = (
    "source_id, target_id, weight, tier, kind, co_access_count, created_at, updated_at, last_strengthened_at"
)


def _link(r: tuple[Any, ...]) -> Link:
    return Link(
        int(r[0]), int(r[1]), float(r[2]), int(r[3]), str(r[4]), int(r[5]), _aware(r[6]), _aware(r[7]), _aware(r[8])
    )


def _filters(f: Filters) -> tuple[str, list[object]]:
    clauses = ["TRUE"]
    params: list[object] = []
    if f.tags:
        clauses.append("list_has_all(tags, ?::VARCHAR[])")
        params.append(list(f.tags))
    if f.since is not None:
        clauses.append("event_time >= ?")
        params.append(_naive(f.since))
    if f.until is not None:
        clauses.append("event_time <= ?")
        params.append(_naive(f.until))
    if f.project is not None:
        clauses.append("project = ?")
        params.append(f.project)
    return " AND ".join(clauses), params


def _damaged(path: Path, error: Exception) -> DatabaseDamagedError:
    return DatabaseDamagedError(
        f"The database file {path} cannot be opened ({error}). It has not been changed. To restore from a backup: "
        f"move it aside (e.g. to {path.name}.damaged), then run `hebbian-memory import <your latest export file>`, "
        "which starts a new database there; the vector index is rebuilt automatically. Without a backup, moving "
        "it aside starts an empty memory; keep the damaged file, as parts of it may still be recoverable."
    )
