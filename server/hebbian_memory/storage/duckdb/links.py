"""Links, access events and the consolidation state of memories: what learning reads and writes."""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from hebbian_memory.storage.duckdb.core import StoreCore, aware, naive
from hebbian_memory.storage.growth import Growth, GrowthRule, grown
from hebbian_memory.storage.rows import Event, Link, LinkVersion, MemoryState

__all__ = ["LinkQueries"]


class LinkQueries(StoreCore):
    """The rows of ``associations`` and ``access_events``, and the strength, tier and replays of memories."""

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
        return _by_pair(self._fetch(_BETWEEN, _ends(pairs)))

    def grow_links(
        self, growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event] = ()
    ) -> list[tuple[Link, bool]]:
        """Read and write in one transaction: the one writing process's transactions are serial, so no other
        growth comes between."""
        with self._tx() as c:
            if events:
                self._insert_events(c, events)
            return self._grow(c, growth, rule, now)

    def _grow(
        self, c: duckdb.DuckDBPyConnection, growth: Sequence[Growth], rule: GrowthRule, now: datetime
    ) -> list[tuple[Link, bool]]:
        """Grow links inside the caller's transaction."""
        if not growth:
            return []
        old = _by_pair(c.execute(_BETWEEN, _ends([(g.source_id, g.target_id) for g in growth])).fetchall())
        out = [
            (grown(old.get((g.source_id, g.target_id)), g, rule, now), (g.source_id, g.target_id) not in old)
            for g in growth
        ]
        self._write_links(c, [link for link, _ in out])
        return out

    def settle_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]], as_of: Mapping[tuple[int, int], LinkVersion]
    ) -> set[tuple[int, int]]:
        """Compare and write in one transaction (the one writer's transactions are serial)."""
        with self._tx() as c:
            wanted = [*((x.source_id, x.target_id) for x in links), *delete]
            stored = _by_pair(c.execute(_BETWEEN, _ends(wanted)).fetchall()) if wanted else {}
            settled = {
                p for p in wanted if p in stored and (stored[p].updated_at, stored[p].co_access_count) == as_of.get(p)
            }
            gone = [p for p in delete if p in settled]
            if gone:
                c.execute(
                    """DELETE FROM associations WHERE (source_id, target_id) IN
                       (SELECT (unnest(?::BIGINT[]), unnest(?::BIGINT[])))""",
                    _ends(gone),
                )
            self._write_links(c, [x for x in links if (x.source_id, x.target_id) in settled])
        return settled

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
            self._write_links(c, links)

    @staticmethod
    def _write_links(c: duckdb.DuckDBPyConnection, links: Sequence[Link]) -> None:
        """Insert or replace links whole, inside the caller's transaction."""
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
                    "created": [naive(x.created_at) for x in links],
                    "updated": [naive(x.updated_at) for x in links],
                    "strengthened": [naive(x.last_strengthened_at) for x in links],
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
                "t": [naive(e[3]) for e in events],
            },
        )
        recalled = [(e[0], naive(e[3])) for e in events if e[2] == "recalled"]
        if recalled:  # being recalled is an access: it counts as a use and restores strength
            c.execute(
                """UPDATE memories SET last_accessed_at = greatest(last_accessed_at, u.t),
                       access_count = access_count + u.n
                   FROM (SELECT m, max(t) AS t, count(*) AS n
                         FROM (SELECT unnest($m::BIGINT[]) AS m, unnest($t::TIMESTAMP[]) AS t) GROUP BY m) AS u
                   WHERE memories.id = u.m""",
                {"m": [r[0] for r in recalled], "t": [r[1] for r in recalled]},
            )

    def trim_events(self, before: datetime, keep: int) -> int:
        """Delete access events older than ``before`` and all but the newest ``keep``; how many went. Learning
        never reads them back (what it needs is summed into each memory's access count and last access), so the
        table is a recent-history window, not a ledger."""
        with self._tx() as c:
            row = c.execute(
                """DELETE FROM access_events
                   WHERE occurred_at < ? OR id <= (SELECT max(id) FROM access_events) - ?""",
                [naive(before), keep],
            ).fetchone()
        return int(row[0]) if row else 0  # DuckDB answers a DELETE with the number of rows deleted

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
                [naive(now), list(ids)],
            )

    def links_of(self, memory_id: int) -> list[Link]:
        """Every link touching ``memory_id``."""
        rows = self._fetch(
            f"SELECT {_LINK_COLUMNS} FROM associations WHERE source_id = ? OR target_id = ? ORDER BY 1, 2",
            [memory_id, memory_id],
        )
        return [_link(r) for r in rows]


_LINK_COLUMNS = (
    "source_id, target_id, weight, tier, kind, co_access_count, created_at, updated_at, last_strengthened_at"
)

_BETWEEN = f"""SELECT {_LINK_COLUMNS} FROM associations
               WHERE (source_id, target_id) IN (SELECT (unnest(?::BIGINT[]), unnest(?::BIGINT[])))"""


def _ends(pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    return [[a for a, _ in pairs], [b for _, b in pairs]]


def _by_pair(rows: list[tuple[Any, ...]]) -> dict[tuple[int, int], Link]:
    return {(link.source_id, link.target_id): link for link in map(_link, rows)}


def _link(r: tuple[Any, ...]) -> Link:
    return Link(
        int(r[0]), int(r[1]), float(r[2]), int(r[3]), str(r[4]), int(r[5]), aware(r[6]), aware(r[7]), aware(r[8])
    )
