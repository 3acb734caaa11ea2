"""Use reports in a running service: recall's ``used`` and ``misled``, remember's ``used``. A report is the third
factor of learning (usage.py): it strengthens the memories used, links those used for one task, and marks the
ones that misled. The use records are a cache of the ``memory_use`` table; what each session was shown last and
each client's expectation live only in this process (a restart relearns them within a few reports). The
service calls it under its write lock."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hebbian_memory import inputs
from hebbian_memory.clock import Clock
from hebbian_memory.config import Settings
from hebbian_memory.errors import InvalidInputError
from hebbian_memory.learning import plasticity, usage
from hebbian_memory.learning.graph import Learning, Pair, pair
from hebbian_memory.storage import Filters, Growth, LinkRows, MemoryRows, UseRow, UseRows

__all__ = ["Feedback", "FeedbackStore", "Floats", "Report"]

Floats = np.ndarray[Any, np.dtype[np.float32]]


class FeedbackStore(MemoryRows, LinkRows, UseRows, Protocol):
    """What a use report reads and writes: which memories exist, their links, their use records."""


@dataclass(frozen=True, slots=True)
class Report:
    """A client's use report, checked: ids of memories used and of memories that misled, none in both."""

    used: list[int]
    misled: list[int]

    @staticmethod
    def of(used: Sequence[int] | None, misled: Sequence[int] | None, maximum: int) -> "Report | None":
        """The report in a call's arguments, or None when it carries none."""
        if not used and not misled:
            return None
        good = inputs.ids(used or [], "used", maximum)
        bad = inputs.ids(misled or [], "misled", maximum)
        both = sorted(set(good) & set(bad))
        if both:
            raise InvalidInputError(
                f"ids {both[:5]} are named both in used and in misled. Name each memory in one of them: used if it "
                "helped, misled if it was wrong or off the point."
            )
        return Report(good, bad)


class Feedback:
    """Use records, the last hits shown to each session, and each client's expectation of its own reports."""

    def __init__(self, settings: Settings, store: FeedbackStore, learning: Learning, clock: Clock) -> None:
        self._rules = settings.plasticity
        self._store = store
        self._learning = learning
        self._clock = clock
        self._uses: dict[int, UseRow] = {}
        self._shown: dict[int, list[int]] = {}  # session -> the hits of its last recall
        self._asked: dict[int, Floats] = {}  # session -> its last recall's query vector (the context of use)
        self._client: dict[int, str] = {}  # session -> client name
        self._expect: dict[str, usage.Expectation] = {}

    def load(self, rows: Iterable[UseRow], keep: bool = False) -> None:
        """The use records, from the database; with ``keep``, added to those held (an import)."""
        if not keep:
            self._uses = {}
        self._uses.update((row.memory_id, row) for row in rows)

    def started(self, session_id: int, client: str | None) -> None:
        self._client[session_id] = client or ""

    def ended(self, session_id: int) -> None:
        self._shown.pop(session_id, None)
        self._asked.pop(session_id, None)
        self._client.pop(session_id, None)

    def shown(self, session_id: int | None, ids: Sequence[int], query: Floats) -> None:
        """The hits a recall returned, in order, and its query: what the session's next report is about."""
        if session_id is not None:
            self._shown[session_id] = list(ids)
            self._asked[session_id] = query

    def forget(self, ids: Iterable[int]) -> None:
        for memory_id in ids:
            self._uses.pop(memory_id, None)

    def priors(self, ids: Sequence[int], query: Floats) -> Floats:
        """Each memory's use history prior now, for ``query`` (usage.prior), -1..1."""
        uses = self._uses
        if not uses:  # nothing reported yet: no clock read or lookups on recall's path
            return np.zeros(len(ids), dtype=np.float32)
        now, rules = self._clock.now(), self._rules
        return np.asarray([usage.prior(uses.get(m), now, rules, query) for m in ids], dtype=np.float32)

    def apply(
        self, report: Report, session_id: int | None, project: str | None, made: Sequence[int] = ()
    ) -> str | None:
        """Learn from ``report``: records, links and access events written in one transaction, then the caches.
        ``made``: memories the call itself stored, written with the ones used (they are linked to them). Returns
        a note naming ids that are not stored in ``project`` (ignored), or None."""
        named = [*report.used, *report.misled]
        scope = Filters((), None, None, project) if project is not None else None
        known = self._store.matching(named, scope) if scope is not None else set(named) - self._store.missing(named)
        used = [m for m in report.used if m in known]
        misled = [m for m in report.misled if m in known]
        now = self._clock.now()
        shown = self._shown.pop(session_id, []) if session_id is not None else []
        # What the memories were used for: the last recall's query (kept for a remember that follows it).
        asked = self._asked.get(session_id) if session_id is not None else None
        expectation = self._expect.setdefault(self._client.get(session_id or 0, ""), usage.Expectation())
        surprise = usage.surprises(expectation, shown, used)
        if shown:
            expectation.observe(shown, set(used))
        surprise.update({m: 1.0 for m in made})
        rows = [usage.reported(self._uses.get(m), m, surprise[m], 0.0, now, self._rules, asked) for m in used]
        rows += [usage.reported(self._uses.get(m), m, 0.0, 1.0, now, self._rules) for m in misled]
        events = [(m, session_id, "used", now) for m in used] + [(m, session_id, "misled", now) for m in misled]
        rule = plasticity.growth_rule(plasticity.USED, self._rules)
        links = self._store.save_use(rows, self._growth(surprise), rule, now, events)
        self._uses.update((row.memory_id, row) for row in rows)
        self._learning.saved(links)
        unknown = [m for m in named if m not in known]
        if not unknown:
            return None
        return (
            f"Ids {unknown[:10]} in used/misled are not stored in this project (forgotten, or never returned here); "
            "they were ignored. The rest of the report was learned."
        )

    def _growth(self, surprise: dict[int, float]) -> list[Growth]:
        """Memories used for one task are linked: each pair gains use_increment x the larger surprise of the two
        (a pair is news when either was). Explicit links keep their kind; others become co-access links. Only the
        use_window most surprising of a report are linked, so a report naming hundreds of ids makes a few dozen
        links, not tens of thousands."""
        rules = self._rules
        ids = sorted(sorted(surprise, key=lambda m: -surprise[m])[: rules.use_window])
        gains: dict[Pair, float] = {}
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                gain = rules.use_increment * max(surprise[a], surprise[b])
                if gain > 0:
                    gains[pair(a, b)] = gain
        return [Growth(*ends, gain) for ends, gain in gains.items()]
