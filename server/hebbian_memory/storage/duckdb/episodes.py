"""Sessions and episodes: a memory with its neighbours in its session, as the keyword index reads it."""

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np

from hebbian_memory.storage.duckdb.core import StoreCore, aware, naive
from hebbian_memory.storage.rows import DocumentRow

__all__ = ["EpisodeQueries"]


class EpisodeQueries(StoreCore):
    """Sessions, and memories read with their episodic neighbours."""

    def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str, now: datetime
    ) -> int:
        with self._tx() as c:
            row = c.execute(
                "INSERT INTO sessions (transport, client_name, client_version, project, started_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                [transport, client_name, client_version, project, naive(now)],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def end_session(self, session_id: int, now: datetime) -> None:
        with self._tx() as c:
            c.execute("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", [naive(now), session_id])

    def last_of_session(self, session_id: int, before_id: int) -> tuple[int, str] | None:
        """The id and text of the newest memory of a session stored before ``before_id``."""
        rows = self._fetch(
            "SELECT id, content FROM memories WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
            [session_id, before_id],
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

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


# A memory's neighbours in its session (none for a memory without one): (previous text, next text, previous id).
_EPISODE = """CASE WHEN session_id IS NULL THEN NULL ELSE lag(content) OVER episode END AS previous_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lead(content) OVER episode END AS next_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lag(id) OVER episode END AS previous_id"""


def _document(r: tuple[Any, ...]) -> DocumentRow:
    return DocumentRow(int(r[0]), r[1], aware(r[2]), json.loads(r[3]), r[4], r[5], None if r[6] is None else int(r[6]))
