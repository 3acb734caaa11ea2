"""Use reports: the ``memory_use`` rows, written with the links and access events a report makes."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from hebbian_memory.storage.duckdb.core import aware, naive
from hebbian_memory.storage.duckdb.links import LinkQueries
from hebbian_memory.storage.growth import Growth, GrowthRule
from hebbian_memory.storage.rows import Link, UseRow

__all__ = ["UseQueries"]


class UseQueries(LinkQueries):
    """The rows of ``memory_use``."""

    def uses(self, ids: Sequence[int] | None = None) -> list[UseRow]:
        """Every memory's use record, or those of ``ids`` (memories never reported on have none)."""
        sql = "SELECT memory_id, uses, misleads, used_at, cue, cue_weight FROM memory_use"
        rows = self._fetch(sql) if ids is None else self._fetch(sql + " WHERE memory_id = ANY(?)", [list(ids)])
        return [UseRow(int(r[0]), float(r[1]), float(r[2]), aware(r[3]), _vector(r[4]), float(r[5])) for r in rows]

    def clear_cues(self) -> None:
        """Forget the contexts of use (query vectors of a model no longer in use); the counts stay."""
        with self._tx() as c:
            c.execute("UPDATE memory_use SET cue = NULL, cue_weight = 0")

    def save_use(
        self,
        rows: Sequence[UseRow],
        growth: Sequence[Growth],
        rule: GrowthRule,
        now: datetime,
        events: Sequence[tuple[int, int | None, str, datetime]],
    ) -> list[Link]:
        """One report whole: its use records, the links it made and its access events, in one transaction.
        Rows of memories forgotten meanwhile are not written (the join keeps only stored memories)."""
        with self._tx() as c:
            if rows:
                c.execute(
                    """INSERT OR REPLACE INTO memory_use (memory_id, uses, misleads, used_at, cue, cue_weight)
                       SELECT u.m, u.u, u.x, u.t, u.c, u.w FROM (SELECT unnest($m::BIGINT[]) AS m,
                           unnest($u::DOUBLE[]) AS u, unnest($x::DOUBLE[]) AS x, unnest($t::TIMESTAMP[]) AS t,
                           unnest($c::FLOAT[][]) AS c, unnest($w::DOUBLE[]) AS w) AS u
                       JOIN memories ON memories.id = u.m""",
                    {
                        "m": [r.memory_id for r in rows],
                        "u": [r.uses for r in rows],
                        "x": [r.misleads for r in rows],
                        "t": [naive(r.used_at) for r in rows],
                        "c": [None if r.cue is None else r.cue.tolist() for r in rows],
                        "w": [r.cue_weight for r in rows],
                    },
                )
            links = [link for link, _ in self._grow(c, growth, rule, now)]
            if events:
                self._insert_events(c, events)
        return links


def _vector(value: Any) -> npt.NDArray[np.float32] | None:
    return None if value is None else np.asarray(value, dtype=np.float32)
