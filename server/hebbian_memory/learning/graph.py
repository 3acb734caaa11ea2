"""Hebbian learning in a running service: which memories a session used (the co-access gate), the links
that makes, the link graph that recall spreads over, and the access events to record. Not thread-safe:
the service calls it under its write lock."""

import itertools
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from datetime import datetime

from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import plasticity
from hebbian_memory.storage import Growth, Link, LinkRows

__all__ = ["Learning", "Pair", "pair"]

Pair = tuple[int, int]


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


# A link in the graph is one float, its weight (0 to 1) plus twice its kind's code: a float per neighbour instead of
# a (weight, kind) tuple and its float (at 100,000 links, about 4 MB less).
_KINDS = ("temporal", "coaccess", "explicit")
_CODES = {kind: code for code, kind in enumerate(_KINDS)}


def _pack(weight: float, kind: str) -> float:
    return weight + 2.0 * _CODES[kind]


def _unpack(held: float) -> tuple[float, str]:
    code = int(held // 2.0)
    return held - 2.0 * code, _KINDS[code]


# A memory's neighbours as one flat tuple, (neighbour, packed link, neighbour, packed link, ...): most memories
# have one or two links (the turns before and after), for which a dict each cost more (measured at 100,000
# memories: the graph 29 -> 16 MB). A memory keeps at most plasticity.max_links_per_memory links, so scans stay short.
_Near = tuple[int | float, ...]


def _find(near: _Near, neighbour: int) -> int:
    """Where ``neighbour`` is in ``near``, or -1."""
    for i in range(0, len(near), 2):
        if near[i] == neighbour:
            return i
    return -1


class Learning:
    """The link graph in memory (a cache of the associations table) and the per-session use tracking."""

    def __init__(self, rules: PlasticitySettings) -> None:
        self.rules = rules
        self._graph: dict[int, _Near] = {}
        self._used: dict[int, deque[int]] = {}  # session -> memories it used, most recent last
        self._co_returned: dict[int, Counter[Pair]] = {}  # session -> how often each pair came back together
        self._events: list[tuple[int, int | None, str, datetime]] = []
        self._pending: list[Pair] = []
        self._watching = False  # a pass is planning from a snapshot: note what changes meanwhile
        self._touched: set[Pair] = set()
        self._gone: set[int] = set()

    # --- the graph ---------------------------------------------------------------------------------------

    def load(self, edges: Iterable[tuple[int, int, float, str]]) -> None:
        """Build the graph from (source, target, weight, kind) rows; weights are refreshed at each pass."""
        self._graph.clear()
        graph = self._graph
        for a, b, weight, kind in edges:
            held = _pack(weight, kind)
            graph[a] = (*graph.get(a, ()), b, held)  # each pair comes once, so no entry is there yet
            graph[b] = (*graph.get(b, ()), a, held)

    def _put(self, a: int, b: int, weight: float, kind: str) -> None:
        held = _pack(weight, kind)
        for x, y in ((a, b), (b, a)):
            near = self._graph.get(x, ())
            i = _find(near, y)
            self._graph[x] = (*near, y, held) if i < 0 else (*near[: i + 1], held, *near[i + 2 :])

    def _drop(self, a: int, b: int) -> None:
        for x, y in ((a, b), (b, a)):
            near = self._graph.get(x, ())
            i = _find(near, y)
            if i >= 0:
                rest = near[:i] + near[i + 2 :]
                if rest:
                    self._graph[x] = rest
                else:
                    del self._graph[x]

    def neighbours(self, memory_id: int) -> list[tuple[int, float, str]]:
        near = self._graph.get(memory_id, ())
        return [(int(near[i]), *_unpack(float(near[i + 1]))) for i in range(0, len(near), 2)]

    def link_count(self) -> int:
        return sum(len(near) for near in self._graph.values()) // 4

    def saved(self, links: Iterable[Link], deleted: Iterable[Pair] = ()) -> None:
        """Mirror what was written to the database."""
        for a, b in deleted:
            self._drop(a, b)
            if self._watching:
                self._touched.add((a, b))
        for link in links:
            self._put(link.source_id, link.target_id, link.weight, link.kind)
            if self._watching:
                self._touched.add((link.source_id, link.target_id))

    def watch(self) -> None:
        """Start noting the links and memories that change while a pass plans from a snapshot."""
        self._watching, self._touched, self._gone = True, set(), set()

    def changes(self) -> tuple[set[Pair], set[int]]:
        """The links touched and the memories forgotten since :meth:`watch` (live sets)."""
        return self._touched, self._gone

    def unwatch(self) -> None:
        self._watching = False

    def refresh(self, links: Iterable[Link]) -> None:
        """Set the graph's weights of links still in it (decayed by a pass); the links' kinds do not change."""
        for link in links:
            if _find(self._graph.get(link.source_id, ()), link.target_id) >= 0:
                self._put(link.source_id, link.target_id, link.weight, link.kind)

    def temporal(self, chain: Sequence[int], now: datetime) -> list[Link]:
        """The temporal links the store made for a chain of memories (first element: the one before, if any)."""
        links = [
            Link(*pair(a, b), self.rules.temporal_weight, plasticity.WORKING, "temporal", 0, now, now, now)
            for a, b in itertools.pairwise(chain)
            if _find(self._graph.get(a, ()), b) < 0
        ]
        self.saved(links)
        return links

    def forget(self, ids: Iterable[int]) -> None:
        for memory_id in ids:
            if self._watching:
                self._gone.add(memory_id)
            for neighbour in self._graph.get(memory_id, ())[0::2]:
                self._drop(memory_id, int(neighbour))
            for window in self._used.values():
                if memory_id in window:
                    window.remove(memory_id)
            self._pending = [p for p in self._pending if memory_id not in p]
            for counts in self._co_returned.values():
                for ends in [e for e in counts if memory_id in e]:
                    del counts[ends]

    # --- the co-access gate ------------------------------------------------------------------------------

    def used(self, session_id: int | None, ids: Iterable[int], kind: str | None, now: datetime) -> list[Pair]:
        """Memories a session used explicitly (remembered again, or linked): each pairs with the memories that
        session used last (up to ``use_window``). Returns the pairs to strengthen."""
        out: list[Pair] = []
        for memory_id in ids:
            if kind is not None:  # None: the caller has recorded the event already
                self._events.append((memory_id, session_id, kind, now))
            if session_id is None:
                continue
            window = self._used.setdefault(session_id, deque(maxlen=self.rules.use_window))
            out.extend(pair(memory_id, other) for other in window if other != memory_id)
            if memory_id in window:
                window.remove(memory_id)
            window.append(memory_id)
        return list(dict.fromkeys(out))

    def recalled(self, session_id: int | None, ids: Sequence[int], now: datetime) -> None:
        """Memories returned by a recall. Being returned together once is not use; the same pair among the
        top ``recall_top`` hits of ``recall_uses`` recalls of one session is: the assistant keeps needing
        them together. Such pairs wait in :meth:`take_pending` (a recall writes nothing)."""
        self._events.extend((memory_id, session_id, "recalled", now) for memory_id in ids)
        if session_id is None:
            return
        counts = self._co_returned.setdefault(session_id, Counter())
        for a, b in itertools.combinations(ids[: self.rules.recall_top], 2):
            ends = pair(a, b)
            counts[ends] += 1
            if counts[ends] == self.rules.recall_uses:
                self._pending.append(ends)

    def take_pending(self) -> list[Pair]:
        """Pairs that passed the recall gate, to strengthen off the recall's path (flush, session end, pass)."""
        pending, self._pending = list(dict.fromkeys(self._pending)), []
        return pending

    def end_session(self, session_id: int) -> None:
        self._used.pop(session_id, None)
        self._co_returned.pop(session_id, None)

    def strengthen(self, store: LinkRows, pairs: Sequence[Pair], now: datetime) -> list[Link]:
        """Hebb for co-accessed pairs: existing links first decay to now, then gain the increment."""
        if not pairs:
            return []
        rule = plasticity.growth_rule(plasticity.COACCESS, self.rules)
        written = store.grow_links([Growth(a, b, self.rules.increment) for a, b in pairs], rule, now)
        links = [link for link, _ in written]
        self.saved(links)
        return links

    def take_events(self) -> list[tuple[int, int | None, str, datetime]]:
        events, self._events = self._events, []
        return events

    def give_back(self, pairs: Sequence[Pair], events: Sequence[tuple[int, int | None, str, datetime]]) -> None:
        """Taken pairs and events the disk refused, kept (ahead of newer ones) to write next time."""
        self._pending[:0] = pairs
        self._events[:0] = events
