"""Memories: insert (with their temporal links), read, filter, re-embed and delete."""

from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from psycopg.types.json import Jsonb

from hebbian_memory.storage.postgres.core import PURGE_DUE, Conn, PgCore, as_array, aware, vector_texts
from hebbian_memory.storage.postgres.links import UPSERT_LINKS
from hebbian_memory.storage.postgres.shared import LINKS, REMOVED, STORED, flat, log_change
from hebbian_memory.storage.rows import Chain, Filters, MemoryRow, NewMemory

__all__ = ["MemoryQueries"]

_MEMORY_COLUMNS = "id, content, tags, metadata, importance, created_at, updated_at, event_time, access_count"


class MemoryQueries(PgCore):
    """The rows of ``memories`` (and the events and temporal links written with them)."""

    def insert(self, memories: Sequence[NewMemory], now: datetime, chain: Chain | None = None) -> list[int]:
        """One statement for the rows, under ids taken from the sequence first and sorted, so they increase in the
        order given whatever other servers do meanwhile. A (project, hash) already stored (another server stored
        the same text at the same moment: the service checks before it inserts) raises ``StoredMeanwhileError``
        and stores nothing; a call again finds and reinforces the stored one."""
        if not memories:
            return []
        with self._storing() as c:
            ids = sorted(
                int(r[0])
                for r in c.execute(
                    "SELECT nextval(pg_get_serial_sequence('memories', 'id')) FROM generate_series(1, %s)",
                    [len(memories)],
                ).fetchall()
            )
            c.execute(
                """INSERT INTO memories (id, content, content_hash, tags, metadata, importance, created_at,
                       updated_at, event_time, last_accessed_at, access_count, strength, tier, session_id,
                       embedding, embedding_model, project)
                   SELECT u.id, u.content, u.hash, ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.metadata,
                       u.importance, %(now)s, %(now)s, u.event_time, %(now)s, 0, 1.0, 1, u.session,
                       u.embedding::vector, u.model, u.project
                   FROM unnest(%(ids)s::bigint[], %(content)s::text[], %(hash)s::text[], %(tags)s::jsonb[],
                       %(metadata)s::jsonb[], %(importance)s::float8[], %(event_time)s::timestamptz[],
                       %(session)s::bigint[], %(embedding)s::text[], %(model)s::text[], %(project)s::text[])
                       AS u(id, content, hash, tags, metadata, importance, event_time, session, embedding,
                            model, project)""",
                {
                    "ids": ids,
                    "content": [m.content for m in memories],
                    "hash": [m.content_hash for m in memories],
                    "tags": [Jsonb(list(m.tags)) for m in memories],
                    "metadata": [Jsonb(m.metadata) for m in memories],
                    "importance": [float(m.importance) for m in memories],
                    "now": now,
                    "event_time": [m.event_time for m in memories],
                    "session": [m.session_id for m in memories],
                    "embedding": vector_texts([m.embedding for m in memories]),
                    "model": [m.embedding_model for m in memories],
                    "project": [m.project for m in memories],
                },
            )
            c.execute(
                """INSERT INTO access_events (memory_id, session_id, kind, occurred_at)
                   SELECT m, s, 'remembered', %s FROM unnest(%s::bigint[], %s::bigint[]) AS u(m, s)""",
                [now, ids, [m.session_id for m in memories]],
            )
            if chain is not None:
                pairs = [(a, b) for a, b in zip([chain.after, *ids[:-1]], ids, strict=True) if a is not None]
                if pairs:
                    self._chain(c, pairs, chain.weight, now)
                    log_change(c, LINKS, flat(pairs))
            log_change(c, STORED, ids)
        return ids

    @staticmethod
    def _chain(c: Conn, pairs: Sequence[tuple[int | None, int]], weight: float, now: datetime) -> None:
        """Temporal links between consecutive memories, as one upsert (a pair ending in a new memory is new,
        unless a link to an id named by ``chain.after`` was made meanwhile: then it is replaced whole)."""
        n = len(pairs)
        c.execute(
            UPSERT_LINKS,
            {
                "a": [p[0] for p in pairs],
                "b": [p[1] for p in pairs],
                "w": [weight] * n,
                "tier": [1] * n,
                "kind": ["temporal"] * n,
                "n": [0] * n,
                "created": [now] * n,
                "updated": [now] * n,
                "strengthened": [now] * n,
            },
        )

    def ids_by_hash(self, hashes: Sequence[str], project: str) -> dict[str, int]:
        rows = self._fetch(
            "SELECT content_hash, id FROM memories WHERE project = %s AND content_hash = ANY(%s::text[])",
            [project, list(hashes)],
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def reinforce(
        self, memory_id: int, tags: Sequence[str], importance: float, session_id: int | None, now: datetime
    ) -> None:
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET access_count = access_count + 1, last_accessed_at = %(now)s,
                       updated_at = %(now)s, strength = 1.0, importance = greatest(importance, %(imp)s),
                       tags = ARRAY(SELECT DISTINCT t FROM unnest(tags || %(tags)s::text[]) AS t ORDER BY t)
                   WHERE id = %(id)s""",
                {"now": now, "imp": importance, "tags": list(tags), "id": memory_id},
            )
            c.execute(
                """INSERT INTO access_events (memory_id, session_id, kind, occurred_at)
                   SELECT id, %s, 'reinforced', %s FROM memories WHERE id = %s""",
                [session_id, now, memory_id],
            )

    def get(self, ids: Sequence[int]) -> dict[int, MemoryRow]:
        if not ids:
            return {}
        rows = self._fetch(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id = ANY(%s::bigint[])", [list(ids)])
        return {
            int(r[0]): MemoryRow(
                id=int(r[0]),
                content=r[1],
                tags=sorted(r[2]),
                metadata=r[3],
                importance=float(r[4]),
                created_at=aware(r[5]),
                updated_at=aware(r[6]),
                event_time=aware(r[7]),
                access_count=int(r[8]),
            )
            for r in rows
        }

    def recent(self, limit: int, project: str) -> list[int]:
        rows = self._fetch("SELECT id FROM memories WHERE project = %s ORDER BY id DESC LIMIT %s", [project, limit])
        return [int(r[0]) for r in rows]

    def missing(self, ids: Sequence[int]) -> set[int]:
        found = self._fetch("SELECT id FROM memories WHERE id = ANY(%s::bigint[])", [list(ids)])
        return set(ids) - {int(r[0]) for r in found}

    def all_ids(self) -> npt.NDArray[np.int64]:
        rows = self._fetch("SELECT id FROM memories ORDER BY id")
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def embeddings(self, ids: Sequence[int], dim: int) -> npt.NDArray[np.float32]:
        found = dict(self._fetch("SELECT id, embedding FROM memories WHERE id = ANY(%s::bigint[])", [list(ids)]))
        out = np.empty((len(ids), dim), dtype=np.float32)
        for i, memory_id in enumerate(ids):
            out[i] = as_array(found[memory_id])
        return out

    def iter_contents(self, batch: int = 5000) -> Iterator[list[tuple[int, str]]]:
        last = 0
        while True:
            rows = self._fetch("SELECT id, content FROM memories WHERE id > %s ORDER BY id LIMIT %s", [last, batch])
            if not rows:
                return
            yield [(int(r[0]), str(r[1])) for r in rows]
            last = int(rows[-1][0])

    def models_in_use(self) -> set[str]:
        return {str(r[0]) for r in self._fetch("SELECT DISTINCT embedding_model FROM memories")}

    def replace_embeddings(self, vectors: dict[int, npt.NDArray[np.float32]], model: str) -> None:
        if not vectors:
            return
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET embedding = u.v::vector, embedding_model = %s
                   FROM unnest(%s::bigint[], %s::text[]) AS u(id, v) WHERE memories.id = u.id""",
                [model, list(vectors), vector_texts(list(vectors.values()))],
            )
            log_change(c, STORED, list(vectors))

    def filter_ids(self, filters: Filters, limit: int) -> list[int] | None:
        where, params = _filters(filters)
        rows = self._fetch(f"SELECT id FROM memories WHERE {where} LIMIT %s", [*params, limit + 1])
        return None if len(rows) > limit else [int(r[0]) for r in rows]

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        if not ids:
            return set()
        where, params = _filters(filters)
        rows = self._fetch(f"SELECT id FROM memories WHERE id = ANY(%s::bigint[]) AND {where}", [list(ids), *params])
        return {int(r[0]) for r in rows}

    def select_for_forget(
        self, ids: Sequence[int] | None, tags: Sequence[str], before: datetime | None, project: str | None
    ) -> list[int]:
        where, params = _filters(Filters(tags=tags, project=project))
        if ids is not None:
            where += " AND id = ANY(%s::bigint[])"
            params.append(list(ids))
        if before is not None:
            where += " AND created_at < %s"
            params.append(before)
        return [int(r[0]) for r in self._fetch(f"SELECT id FROM memories WHERE {where} ORDER BY id", params)]

    def delete(self, ids: Sequence[int], purge_due: bool = False) -> None:
        """Links go by hand (they have no foreign keys); access events and use records by cascade."""
        if not ids:
            return
        with self._tx() as c:
            if purge_due:
                c.execute("INSERT INTO meta VALUES (%s, '1') ON CONFLICT (key) DO UPDATE SET value = '1'", [PURGE_DUE])
            c.execute(
                """DELETE FROM associations
                   WHERE source_id = ANY(%(ids)s::bigint[]) OR target_id = ANY(%(ids)s::bigint[])""",
                {"ids": list(ids)},
            )
            gone = c.execute("DELETE FROM memories WHERE id = ANY(%s::bigint[]) RETURNING id", [list(ids)]).fetchall()
            log_change(c, REMOVED, [int(r[0]) for r in gone])


def _filters(f: Filters) -> tuple[str, list[object]]:
    clauses = ["TRUE"]
    params: list[object] = []
    if f.tags:
        clauses.append("tags @> %s::text[]")
        params.append(list(f.tags))
    if f.since is not None:
        clauses.append("event_time >= %s")
        params.append(f.since)
    if f.until is not None:
        clauses.append("event_time <= %s")
        params.append(f.until)
    if f.project is not None:
        clauses.append("project = %s")
        params.append(f.project)
    return " AND ".join(clauses), params
