"""Use reports: the ``memory_use`` rows, written with the links and access events a report makes."""

from collections.abc import Sequence
from datetime import datetime

from hebbian_memory.storage.base import Link, UseRow
from hebbian_memory.storage.core import aware, naive
from hebbian_memory.storage.links import LinkQueries


class UseQueries(LinkQueries):
    """The rows of ``memory_use``."""

    def uses(self) -> list[UseRow]:
        """Every memory's use record (memories never reported on have none)."""
        rows = self._fetch("SELECT memory_id, uses, misleads, used_at FROM memory_use")
        return [UseRow(int(r[0]), float(r[1]), float(r[2]), aware(r[3])) for r in rows]

    def save_use(
        self, rows: Sequence[UseRow], links: Sequence[Link], events: Sequence[tuple[int, int | None, str, datetime]]
    ) -> None:
        """One report whole: its use records, the links it made and its access events, in one transaction.
        Rows of memories forgotten meanwhile are not written (the join keeps only stored memories)."""
        with self._tx() as c:
            if rows:
                c.execute(
                    """INSERT OR REPLACE INTO memory_use (memory_id, uses, misleads, used_at)
                       SELECT u.m, u.u, u.x, u.t FROM (SELECT unnest($m::BIGINT[]) AS m, unnest($u::DOUBLE[]) AS u,
                           unnest($x::DOUBLE[]) AS x, unnest($t::TIMESTAMP[]) AS t) AS u
                       JOIN memories ON memories.id = u.m""",
                    {
                        "m": [r.memory_id for r in rows],
                        "u": [r.uses for r in rows],
                        "x": [r.misleads for r in rows],
                        "t": [naive(r.used_at) for r in rows],
                    },
                )
            self._write_links(c, links)
            if events:
                self._insert_events(c, events)
