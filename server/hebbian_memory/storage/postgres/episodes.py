"""Sessions and episodes: a memory with its neighbours in its session, as the keyword index reads it."""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from hebbian_memory.storage.postgres.core import PgCore, aware
from hebbian_memory.storage.rows import DocumentRow

__all__ = ["EpisodeQueries"]

# A memory's neighbours in its session (none for a memory without one): (previous text, next text, previous id).
_EPISODE = """CASE WHEN session_id IS NULL THEN NULL ELSE lag(content) OVER episode END AS previous_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lead(content) OVER episode END AS next_text,
    CASE WHEN session_id IS NULL THEN NULL ELSE lag(id) OVER episode END AS previous_id"""


class EpisodeQueries(PgCore):
    """Sessions, and memories read with their episodic neighbours."""

    def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str, now: datetime
    ) -> int:
        with self._tx() as c:
            row = c.execute(
                """INSERT INTO sessions (transport, client_name, client_version, project, started_at)
                   VALUES (%s, %s, %s, %s, %s) RETURNING id""",
                [transport, client_name, client_version, project, now],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def end_session(self, session_id: int, now: datetime) -> None:
        with self._tx() as c:
            c.execute("UPDATE sessions SET ended_at = %s WHERE id = %s AND ended_at IS NULL", [now, session_id])

    def last_of_session(self, session_id: int, before_id: int) -> tuple[int, str] | None:
        rows = self._fetch(
            "SELECT id, content FROM memories WHERE session_id = %s AND id < %s ORDER BY id DESC LIMIT 1",
            [session_id, before_id],
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def documents(self, session_ids: Sequence[int] | None = None) -> list[DocumentRow]:
        where = "" if session_ids is None else "WHERE session_id = ANY(%s::bigint[])"
        rows = self._fetch(
            f"""SELECT id, content, event_time, metadata, {_EPISODE}
                FROM memories {where}
                WINDOW episode AS (PARTITION BY session_id ORDER BY id)
                ORDER BY id""",
            [] if session_ids is None else [list(session_ids)],
        )
        return [_document(r) for r in rows]

    def iter_documents(self, batch: int) -> Iterator[list[DocumentRow]]:
        """From one snapshot, ``batch`` rows at a time through a server-side cursor (the window runs in
        PostgreSQL; only a batch of rows is held here)."""
        with self.snapshot() as c:
            query = f"""SELECT id, content, event_time, metadata, {_EPISODE} FROM memories
                        WINDOW episode AS (PARTITION BY session_id ORDER BY id) ORDER BY id"""
            for rows in self._stream(c, query, (), batch):
                yield [_document(r) for r in rows]

    def documents_around(self, ids: Sequence[int]) -> list[DocumentRow]:
        rows = self._fetch(
            f"""WITH e AS (
                    SELECT id, content, event_time, metadata, {_EPISODE},
                        CASE WHEN session_id IS NULL THEN NULL ELSE lead(id) OVER episode END AS next_id
                    FROM memories
                    WHERE id = ANY(%(ids)s::bigint[])
                       OR session_id IN (SELECT session_id FROM memories WHERE id = ANY(%(ids)s::bigint[]))
                    WINDOW episode AS (PARTITION BY session_id ORDER BY id))
                SELECT id, content, event_time, metadata, previous_text, next_text, previous_id FROM e
                WHERE id = ANY(%(ids)s::bigint[])
                   OR id IN (SELECT previous_id FROM e WHERE id = ANY(%(ids)s::bigint[]))
                   OR id IN (SELECT next_id FROM e WHERE id = ANY(%(ids)s::bigint[]))
                ORDER BY id""",
            {"ids": list(ids)},
        )
        return [_document(r) for r in rows]

    def sessions_of(self, ids: Sequence[int]) -> set[int]:
        rows = self._fetch(
            "SELECT DISTINCT session_id FROM memories WHERE id = ANY(%s::bigint[]) AND session_id IS NOT NULL",
            [list(ids)],
        )
        return {int(r[0]) for r in rows}


def _document(r: tuple[Any, ...]) -> DocumentRow:
    return DocumentRow(int(r[0]), r[1], aware(r[2]), r[3], r[4], r[5], None if r[6] is None else int(r[6]))
