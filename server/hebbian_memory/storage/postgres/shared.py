"""What servers sharing one database need of it beyond rows: links grown and settled inside single statements,
the change log their caches catch up from, and named locks across servers (session advisory locks).

The change log is written last in each writing transaction, under a transaction-scoped advisory lock, with the
next number after the newest: so numbers are given in commit order, and a reader never sees a later change
without every earlier one (a server that read up to N never misses a change numbered N or less)."""

from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hebbian_memory.storage.growth import Growth, GrowthRule
from hebbian_memory.storage.postgres.core import Conn, PgCore, aware
from hebbian_memory.storage.rows import Changes, Link, LinkVersion

__all__ = [
    "LINKS",
    "LINK_COLUMNS",
    "REMOVED",
    "STORED",
    "USES",
    "SharedQueries",
    "flat",
    "grow",
    "link_row",
    "log_change",
    "settle",
]

# The kinds of change logged.
STORED = "stored"
REMOVED = "removed"
LINKS = "links"
USES = "uses"
_CHANGE_LOCK = 0x4865_6262_6368_6731  # "Hebbchg1": one writer appends to the change log at a time
_NAMED_LOCK = 0x4865_6262  # first key of exclusive(): the second is the name's hash

LINK_COLUMNS = "source_id, target_id, weight, tier, kind, co_access_count, created_at, updated_at, last_strengthened_at"
# The decayed weight of the stored link ``a`` as of %(now)s: x rate(tier) per cycle of idle time (storage.growth).
_DECAYED = """(a.weight * CASE WHEN %(now)s > a.updated_at THEN power(
        CASE a.tier WHEN 1 THEN %(r1)s::float8 WHEN 2 THEN %(r2)s::float8 ELSE %(r3)s::float8 END,
        (extract(epoch FROM (%(now)s - a.updated_at)) / (%(cycle)s::float8 * 3600))::float8) ELSE 1 END)"""
_GROW = f"""
    WITH g AS (SELECT * FROM unnest(%(a)s::bigint[], %(b)s::bigint[], %(add)s::float8[], %(toward)s::float8[])
               AS g(source_id, target_id, add, toward))
    INSERT INTO associations AS a ({LINK_COLUMNS})
    SELECT g.source_id, g.target_id, least(1.0, g.add + g.toward), %(tier)s, %(kind)s, 1, %(now)s, %(now)s, %(now)s
    FROM g
    ON CONFLICT (source_id, target_id) DO UPDATE SET
        weight = (SELECT least(1.0, {_DECAYED} + g.add + g.toward * (1 - {_DECAYED}))
                  FROM g WHERE g.source_id = a.source_id AND g.target_id = a.target_id),
        tier = greatest(a.tier, EXCLUDED.tier),
        kind = CASE WHEN a.kind = ANY(%(relabel)s::text[]) THEN EXCLUDED.kind ELSE a.kind END,
        co_access_count = a.co_access_count + 1,
        updated_at = EXCLUDED.updated_at,
        last_strengthened_at = EXCLUDED.last_strengthened_at
    RETURNING {LINK_COLUMNS}, (xmax = 0) AS inserted"""


def log_change(c: Conn, kind: str, ids: Sequence[int]) -> None:
    """Append a change inside the caller's transaction; call it last, as the lock is held until commit."""
    if ids:
        c.execute("SELECT pg_advisory_xact_lock(%s)", [_CHANGE_LOCK])
        c.execute(
            "INSERT INTO changes (seq, kind, ids) SELECT coalesce(max(seq), 0) + 1, %s, %s FROM changes",
            [kind, list(ids)],
        )


def flat(pairs: Sequence[tuple[int, int]]) -> list[int]:
    return [end for p in pairs for end in p]


def grow(c: Conn, growth: Sequence[Growth], rule: GrowthRule, now: datetime) -> list[tuple[Link, bool]]:
    """Grow links in one statement inside the caller's transaction: each new weight is computed from the row as
    the statement finds it (locked), so a growth by another server is never lost."""
    if not growth:
        return []
    d = rule.decay
    rows = c.execute(
        _GROW,  # pyright: ignore[reportArgumentType] -- LiteralString rule
        {
            "a": [g.source_id for g in growth],
            "b": [g.target_id for g in growth],
            "add": [g.add for g in growth],
            "toward": [g.toward for g in growth],
            "tier": rule.tier,
            "kind": rule.kind,
            "relabel": sorted(rule.relabel),
            "now": now,
            "r1": d.working,
            "r2": d.episodic,
            "r3": d.semantic,
            "cycle": d.cycle_hours,
        },
    ).fetchall()
    by_pair = {(int(r[0]), int(r[1])): (link_row(r), bool(r[9])) for r in rows}
    log_change(c, LINKS, flat(list(by_pair)))
    return [by_pair[(g.source_id, g.target_id)] for g in growth]


def settle(
    c: Conn, links: Sequence[Link], delete: Sequence[tuple[int, int]], as_of: Mapping[tuple[int, int], LinkVersion]
) -> set[tuple[int, int]]:
    """A pass's writes where the stored link is as the pass saw it (compare-and-set on updated_at)."""
    settled: set[tuple[int, int]] = set()
    nothing = (None, None)  # a pair the pass did not read matches no stored link
    if links:
        planned = [as_of.get((x.source_id, x.target_id), nothing) for x in links]
        rows = c.execute(
            """UPDATE associations a SET weight = u.w, tier = u.tier, kind = u.kind, co_access_count = u.n,
                   created_at = u.created, updated_at = u.updated, last_strengthened_at = u.strengthened
               FROM unnest(%(a)s::bigint[], %(b)s::bigint[], %(w)s::float8[], %(tier)s::smallint[], %(kind)s::text[],
                           %(n)s::integer[], %(created)s::timestamptz[], %(updated)s::timestamptz[],
                           %(strengthened)s::timestamptz[], %(as_of)s::timestamptz[], %(as_of_n)s::integer[])
                    AS u(a, b, w, tier, kind, n, created, updated, strengthened, as_of, as_of_n)
               WHERE a.source_id = u.a AND a.target_id = u.b AND a.updated_at = u.as_of
                 AND a.co_access_count = u.as_of_n
               RETURNING a.source_id, a.target_id""",
            {
                "a": [x.source_id for x in links],
                "b": [x.target_id for x in links],
                "w": [x.weight for x in links],
                "tier": [x.tier for x in links],
                "kind": [x.kind for x in links],
                "n": [x.co_access_count for x in links],
                "created": [x.created_at for x in links],
                "updated": [x.updated_at for x in links],
                "strengthened": [x.last_strengthened_at for x in links],
                "as_of": [seen[0] for seen in planned],
                "as_of_n": [seen[1] for seen in planned],
            },
        ).fetchall()
        settled |= {(int(a), int(b)) for a, b in rows}
    if delete:
        rows = c.execute(
            """DELETE FROM associations a
               USING unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::integer[]) AS d(a, b, as_of, as_of_n)
               WHERE a.source_id = d.a AND a.target_id = d.b AND a.updated_at = d.as_of
                 AND a.co_access_count = d.as_of_n
               RETURNING a.source_id, a.target_id""",
            [
                [a for a, _ in delete],
                [b for _, b in delete],
                [as_of.get(p, nothing)[0] for p in delete],
                [as_of.get(p, nothing)[1] for p in delete],
            ],
        ).fetchall()
        settled |= {(int(a), int(b)) for a, b in rows}
    log_change(c, LINKS, flat(sorted(settled)))
    return settled


class SharedQueries(PgCore):
    """The change log and named locks across servers."""

    def change_head(self) -> int:
        row = self._fetch("SELECT coalesce(max(seq), 0) FROM changes")
        return int(row[0][0])

    def changes(self, after: int) -> Changes:
        # One statement, so one snapshot: the oldest change kept and the rows agree even while a trim runs.
        rows = self._fetch(
            """WITH kept AS (SELECT min(seq) AS oldest FROM changes)
               SELECT kept.oldest, c.seq, c.kind, c.ids FROM kept LEFT JOIN changes c ON c.seq > %s ORDER BY c.seq""",
            [after],
        )
        oldest = rows[0][0]
        found: dict[str, set[int]] = {STORED: set(), REMOVED: set(), USES: set()}
        pairs: set[tuple[int, int]] = set()
        for _, seq, kind, ids in rows:
            if seq is None:  # nothing after ``after``
                continue
            if kind == LINKS:
                pairs.update(zip(ids[0::2], ids[1::2], strict=True))
            else:
                found[kind].update(ids)
        head = int(rows[-1][1]) if rows[-1][1] is not None else after
        return Changes(
            head,
            frozenset(found[STORED]),
            frozenset(found[REMOVED]),
            frozenset(pairs),
            frozenset(found[USES]),
            complete=oldest is None or after >= int(oldest) - 1,  # numbers have no gaps (see log_change)
        )

    def trim_changes(self, keep: int) -> int:
        with self._tx() as c:
            cur = c.execute("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - %s", [max(keep, 1)])
            return cur.rowcount

    @contextmanager
    def exclusive(self, name: str) -> Generator[None]:
        """A session advisory lock on a connection held for the block: released at its end, or by the server
        when this process dies (its connection closes)."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            conn.execute("SELECT pg_advisory_lock(%s::integer, hashtext(%s))", [_NAMED_LOCK, name])
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s::integer, hashtext(%s))", [_NAMED_LOCK, name])
                conn.autocommit = False


def link_row(r: tuple[Any, ...]) -> Link:
    """A link from its ``LINK_COLUMNS``."""
    return Link(
        int(r[0]), int(r[1]), float(r[2]), int(r[3]), str(r[4]), int(r[5]), aware(r[6]), aware(r[7]), aware(r[8])
    )
