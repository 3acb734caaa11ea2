"""Links, access events, the consolidation state of memories, and use reports: what learning reads and writes.
A batch of links is written by one upsert statement, never read and written back from Python, so servers sharing
the database never lose one another's whole-row writes to a race (the last statement wins, whole)."""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from hebbian_memory.storage.growth import Growth, GrowthRule
from hebbian_memory.storage.postgres.core import Conn, PgCore, as_array, aware, vector_texts
from hebbian_memory.storage.postgres.shared import (
    LINK_COLUMNS,
    LINKS,
    USES,
    flat,
    grow,
    link_row,
    log_change,
    settle,
)
from hebbian_memory.storage.rows import Event, Link, LinkVersion, MemoryState, UseRow

__all__ = ["UPSERT_LINKS", "LinkQueries", "link_params"]

UPSERT_LINKS = f"""
    INSERT INTO associations ({LINK_COLUMNS})
    SELECT * FROM unnest(%(a)s::bigint[], %(b)s::bigint[], %(w)s::float8[], %(tier)s::smallint[], %(kind)s::text[],
                         %(n)s::integer[], %(created)s::timestamptz[], %(updated)s::timestamptz[],
                         %(strengthened)s::timestamptz[])
    ON CONFLICT (source_id, target_id) DO UPDATE SET
        weight = EXCLUDED.weight, tier = EXCLUDED.tier, kind = EXCLUDED.kind,
        co_access_count = EXCLUDED.co_access_count, created_at = EXCLUDED.created_at,
        updated_at = EXCLUDED.updated_at, last_strengthened_at = EXCLUDED.last_strengthened_at"""


def link_params(links: Sequence[Link]) -> dict[str, list[Any]]:
    """Links as the column arrays ``UPSERT_LINKS`` takes. A pair named twice in one batch is written once, the
    last one (PostgreSQL refuses to upsert one row twice in a statement)."""
    last = list({(x.source_id, x.target_id): x for x in links}.values())
    return {
        "a": [x.source_id for x in last],
        "b": [x.target_id for x in last],
        "w": [x.weight for x in last],
        "tier": [x.tier for x in last],
        "kind": [x.kind for x in last],
        "n": [x.co_access_count for x in last],
        "created": [x.created_at for x in last],
        "updated": [x.updated_at for x in last],
        "strengthened": [x.last_strengthened_at for x in last],
    }


class LinkQueries(PgCore):
    """The rows of ``associations``, ``access_events`` and ``memory_use``, and the strength, tier and replays of
    memories."""

    def graph(self, batch: int = 10_000) -> Iterator[tuple[int, int, float, str]]:
        with self.snapshot() as c:
            for rows in self._stream(c, "SELECT source_id, target_id, weight, kind FROM associations", (), batch):
                yield from ((int(a), int(b), float(w), str(k)) for a, b, w, k in rows)

    def all_links(self) -> list[Link]:
        return [link_row(r) for r in self._fetch(f"SELECT {LINK_COLUMNS} FROM associations")]

    def links_between(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Link]:
        if not pairs:
            return {}
        rows = self._fetch(
            f"""SELECT {LINK_COLUMNS} FROM associations
                WHERE (source_id, target_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))""",
            [[a for a, _ in pairs], [b for _, b in pairs]],
        )
        return {(link.source_id, link.target_id): link for link in map(link_row, rows)}

    def save_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]] = (), events: Sequence[Event] = ()
    ) -> None:
        with self._tx() as c:
            if events:
                _insert_events(c, events)
            if delete:
                c.execute(
                    """DELETE FROM associations WHERE (source_id, target_id) IN
                       (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))""",
                    [[a for a, _ in delete], [b for _, b in delete]],
                )
            if links:
                c.execute(UPSERT_LINKS, link_params(links))
            log_change(c, LINKS, flat([*delete, *((x.source_id, x.target_id) for x in links)]))

    def grow_links(
        self, growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event] = ()
    ) -> list[tuple[Link, bool]]:
        with self._tx() as c:
            if events:
                _insert_events(c, events)
            return grow(c, growth, rule, now)

    def settle_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]], as_of: Mapping[tuple[int, int], LinkVersion]
    ) -> set[tuple[int, int]]:
        with self._tx() as c:
            return settle(c, links, delete, as_of)

    def record_events(self, events: Sequence[Event]) -> None:
        if events:
            with self._tx() as c:
                _insert_events(c, events)

    def trim_events(self, before: datetime, keep: int) -> int:
        with self._tx() as c:
            cur = c.execute(
                """DELETE FROM access_events
                   WHERE occurred_at < %s OR id <= (SELECT max(id) FROM access_events) - %s""",
                [before, keep],
            )
            return max(cur.rowcount, 0)

    def memory_states(self) -> list[MemoryState]:
        rows = self._fetch(
            """SELECT id, tier, access_count + replay_count, importance,
                      greatest(last_accessed_at, coalesce(last_replayed_at, last_accessed_at)), last_replayed_at,
                      strength
               FROM memories"""
        )
        return [
            MemoryState(int(r[0]), int(r[1]), int(r[2]), float(r[3]), aware(r[4]), r[5] and aware(r[5]), float(r[6]))
            for r in rows
        ]

    def set_memory_states(self, ids: Sequence[int], strengths: Sequence[float], tiers: Sequence[int]) -> None:
        if not ids:
            return
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET strength = u.s, tier = u.t
                   FROM (SELECT DISTINCT ON (id) id, s, t
                         FROM unnest(%s::bigint[], %s::float8[], %s::smallint[]) WITH ORDINALITY AS x(id, s, t, o)
                         ORDER BY id, o DESC) AS u
                   WHERE memories.id = u.id""",
                [list(ids), list(strengths), list(tiers)],
            )

    def mark_replayed(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        with self._tx() as c:
            c.execute(
                """UPDATE memories SET last_replayed_at = %s, replay_count = replay_count + 1
                   WHERE id = ANY(%s::bigint[])""",
                [now, list(ids)],
            )

    def links_of(self, memory_id: int) -> list[Link]:
        rows = self._fetch(
            f"""SELECT {LINK_COLUMNS} FROM associations WHERE source_id = %(id)s OR target_id = %(id)s
                ORDER BY 1, 2""",
            {"id": memory_id},
        )
        return [link_row(r) for r in rows]

    # Use reports.

    def uses(self, ids: Sequence[int] | None = None) -> list[UseRow]:
        sql = "SELECT memory_id, uses, misleads, used_at, cue, cue_weight FROM memory_use"
        rows = self._fetch(sql) if ids is None else self._fetch(sql + " WHERE memory_id = ANY(%s)", [list(ids)])
        return [use_row(r) for r in rows]

    def clear_cues(self) -> None:
        with self._tx() as c:
            c.execute("UPDATE memory_use SET cue = NULL, cue_weight = 0")

    def save_use(
        self, rows: Sequence[UseRow], growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event]
    ) -> list[Link]:
        with self._tx() as c:
            if rows:
                c.execute(
                    """INSERT INTO memory_use (memory_id, uses, misleads, used_at, cue, cue_weight)
                       SELECT DISTINCT ON (u.m) u.m, u.u, u.x, u.t, u.c::vector, u.w
                       FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::timestamptz[], %s::text[],
                                   %s::float8[]) WITH ORDINALITY AS u(m, u, x, t, c, w, o)
                       JOIN memories ON memories.id = u.m
                       ORDER BY u.m, u.o DESC
                       ON CONFLICT (memory_id) DO UPDATE SET uses = EXCLUDED.uses, misleads = EXCLUDED.misleads,
                           used_at = EXCLUDED.used_at, cue = EXCLUDED.cue, cue_weight = EXCLUDED.cue_weight""",
                    [
                        [r.memory_id for r in rows],
                        [r.uses for r in rows],
                        [r.misleads for r in rows],
                        [r.used_at for r in rows],
                        [None if r.cue is None else vector_texts([r.cue])[0] for r in rows],
                        [r.cue_weight for r in rows],
                    ],
                )
            if events:
                _insert_events(c, events)
            links = [link for link, _ in grow(c, growth, rule, now)]
            log_change(c, USES, [r.memory_id for r in rows])
        return links


def _insert_events(c: Conn, events: Sequence[Event]) -> None:
    """Access events of memories still stored (the others are dropped); a 'recalled' one is also an access."""
    c.execute(
        """INSERT INTO access_events (memory_id, session_id, kind, occurred_at)
           SELECT u.m, u.s, u.k, u.t
           FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[]) AS u(m, s, k, t)
           WHERE u.m IN (SELECT id FROM memories)""",
        [[e[0] for e in events], [e[1] for e in events], [e[2] for e in events], [e[3] for e in events]],
    )
    recalled = [(e[0], e[3]) for e in events if e[2] == "recalled"]
    if recalled:
        c.execute(
            """UPDATE memories SET last_accessed_at = greatest(last_accessed_at, u.t),
                   access_count = access_count + u.n
               FROM (SELECT m, max(t) AS t, count(*) AS n
                     FROM unnest(%s::bigint[], %s::timestamptz[]) AS x(m, t) GROUP BY m) AS u
               WHERE memories.id = u.m""",
            [[r[0] for r in recalled], [r[1] for r in recalled]],
        )


def use_row(r: tuple[Any, ...]) -> UseRow:
    cue = None if r[4] is None else as_array(r[4])
    return UseRow(int(r[0]), float(r[1]), float(r[2]), aware(r[3]), cue, float(r[5]))
