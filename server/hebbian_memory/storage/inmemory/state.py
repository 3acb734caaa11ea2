"""The in-memory store's state: immutable records in plain dicts. A write works on a copy of the dicts and swaps it
in whole, so a failed write leaves nothing behind and a reader holding the old state reads one consistent moment."""

import json
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from hebbian_memory.storage.rows import (
    DocumentRow,
    Event,
    Filters,
    Link,
    MemoryRow,
    SessionRow,
    StoredMemory,
    UseRow,
)

__all__ = [
    "ROW_VERSION",
    "Logged",
    "Memory",
    "State",
    "StoredEvent",
    "frozen_vector",
    "stored_link",
    "stored_use",
    "utc",
]

# The DuckDB schema whose rows this store holds (storage.duckdb.schema.SCHEMA_VERSION, not imported: that module imports
# duckdb). An export records it; tests/storage/test_backends.py checks the two agree.
ROW_VERSION = 5

# A change as logged: ("stored" | "removed" | "use", memory id) or ("link", (source, target)).
Logged = tuple[str, int | tuple[int, int]]

# An access event as kept: (memory id, session id or None, kind, when).
StoredEvent = tuple[int, int | None, str, datetime]


def utc(ts: datetime) -> datetime:
    """Times are kept as aware UTC, as DuckDB's naive UTC columns read back."""
    return ts.astimezone(UTC)


def frozen_vector(v: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """A float32 copy nobody can change in place (records are shared between the states of many moments)."""
    out = np.array(v, dtype=np.float32)
    out.flags.writeable = False
    return out


def stored_link(link: Link) -> Link:
    return Link(
        int(link.source_id),
        int(link.target_id),
        float(link.weight),
        int(link.tier),
        str(link.kind),
        int(link.co_access_count),
        utc(link.created_at),
        utc(link.updated_at),
        utc(link.last_strengthened_at),
    )


def stored_use(row: UseRow, memory_id: int) -> UseRow:
    cue = None if row.cue is None else frozen_vector(row.cue)
    return UseRow(memory_id, float(row.uses), float(row.misleads), utc(row.used_at), cue, float(row.cue_weight))


@dataclass(frozen=True, slots=True)
class Memory:
    """A memory row; metadata kept as its JSON text, so what comes out is a fresh dict, as DuckDB's JSON column."""

    id: int
    project: str
    content: str
    content_hash: str
    tags: tuple[str, ...]
    metadata: str
    importance: float
    created_at: datetime
    updated_at: datetime
    event_time: datetime
    last_accessed_at: datetime
    access_count: int
    strength: float
    tier: int
    session_id: int | None
    replay_count: int
    last_replayed_at: datetime | None
    embedding_model: str
    embedding: npt.NDArray[np.float32]

    @classmethod
    def of(cls, row: StoredMemory, memory_id: int) -> "Memory":
        return cls(
            memory_id,
            row.project,
            row.content,
            row.content_hash,
            tuple(row.tags),
            json.dumps(row.metadata, ensure_ascii=False),
            float(row.importance),
            utc(row.created_at),
            utc(row.updated_at),
            utc(row.event_time),
            utc(row.last_accessed_at),
            int(row.access_count),
            float(row.strength),
            int(row.tier),
            row.session_id,
            int(row.replay_count),
            None if row.last_replayed_at is None else utc(row.last_replayed_at),
            row.embedding_model,
            frozen_vector(row.embedding),
        )

    def row(self) -> MemoryRow:
        return MemoryRow(
            self.id,
            self.content,
            sorted(self.tags),
            json.loads(self.metadata),
            self.importance,
            self.created_at,
            self.updated_at,
            self.event_time,
            self.access_count,
        )

    def stored(self, use: UseRow | None) -> StoredMemory:
        return StoredMemory(
            self.id,
            self.project,
            self.content,
            self.content_hash,
            self.tags,
            json.loads(self.metadata),
            self.importance,
            self.created_at,
            self.updated_at,
            self.event_time,
            self.last_accessed_at,
            self.access_count,
            self.strength,
            self.tier,
            self.session_id,
            self.replay_count,
            self.last_replayed_at,
            self.embedding_model,
            self.embedding,
            use,
        )

    def matches(self, f: Filters) -> bool:
        """All of the filter's tags, its event time window (inclusive), its project."""
        return (
            all(t in self.tags for t in f.tags)
            and (f.since is None or self.event_time >= utc(f.since))
            and (f.until is None or self.event_time <= utc(f.until))
            and (f.project is None or self.project == f.project)
        )


@dataclass(slots=True)
class State:
    """Every row of one moment. Only a write's own copy is ever changed (see ``copy``)."""

    memories: dict[int, Memory] = field(default_factory=dict[int, Memory])
    by_hash: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict[tuple[str, str], tuple[int, ...]])
    by_session: dict[int, tuple[int, ...]] = field(default_factory=dict[int, tuple[int, ...]])  # ascending ids
    sessions: dict[int, SessionRow] = field(default_factory=dict[int, SessionRow])
    links: dict[tuple[int, int], Link] = field(default_factory=dict[tuple[int, int], Link])
    events: dict[int, StoredEvent] = field(default_factory=dict[int, StoredEvent])  # by event id, ascending
    uses: dict[int, UseRow] = field(default_factory=dict[int, UseRow])
    meta: dict[str, str] = field(default_factory=dict[str, str])
    next_memory: int = 1
    next_session: int = 1
    next_event: int = 1
    # This write's changes, for the change log (``InMemoryCore`` appends them when the write is kept).
    logged: list[Logged] = field(default_factory=list[Logged])

    def copy(self) -> "State":
        """A copy a write may change: the dicts are new, the (immutable) records shared."""
        return replace(
            self,
            logged=[],
            memories=dict(self.memories),
            by_hash=dict(self.by_hash),
            by_session=dict(self.by_session),
            sessions=dict(self.sessions),
            links=dict(self.links),
            events=dict(self.events),
            uses=dict(self.uses),
            meta=dict(self.meta),
        )

    def add_memory(self, m: Memory) -> None:
        self.memories[m.id] = m
        self.logged.append(("stored", m.id))
        key = (m.project, m.content_hash)
        self.by_hash[key] = (*self.by_hash.get(key, ()), m.id)
        if m.session_id is not None:
            episode = list(self.by_session.get(m.session_id, ()))
            insort(episode, m.id)  # an import may add an id below the session's newest
            self.by_session[m.session_id] = tuple(episode)

    def remove_memories(self, ids: set[int]) -> None:
        """Memories with their links, access events and use records."""
        for i in ids:
            m = self.memories.pop(i, None)
            if m is None:
                continue
            self.logged.append(("removed", i))
            key = (m.project, m.content_hash)
            self.by_hash[key] = tuple(j for j in self.by_hash[key] if j != i)
            if not self.by_hash[key]:
                del self.by_hash[key]
            if m.session_id is not None:
                self.by_session[m.session_id] = tuple(j for j in self.by_session[m.session_id] if j != i)
                if not self.by_session[m.session_id]:
                    del self.by_session[m.session_id]
            self.uses.pop(i, None)
        self.links = {k: v for k, v in self.links.items() if k[0] not in ids and k[1] not in ids}
        self.events = {k: e for k, e in self.events.items() if e[0] not in ids}

    def add_events(self, events: Sequence[Event]) -> None:
        """Events of stored memories (others dropped); a 'recalled' one is an access (count +1, later last access)."""
        for memory_id, session_id, kind, when in events:
            m = self.memories.get(memory_id)
            if m is None:
                continue
            ts = utc(when)
            self.events[self.next_event] = (memory_id, session_id, kind, ts)
            self.next_event += 1
            if kind == "recalled":
                self.memories[memory_id] = replace(
                    m, access_count=m.access_count + 1, last_accessed_at=max(m.last_accessed_at, ts)
                )

    def write_links(self, links: Sequence[Link]) -> None:
        """Insert or replace links whole (ends not checked, as DuckDB keeps no foreign keys)."""
        for link in links:
            self.links[(link.source_id, link.target_id)] = stored_link(link)
            self.logged.append(("link", (link.source_id, link.target_id)))

    def drop_link(self, ends: tuple[int, int]) -> None:
        if self.links.pop(ends, None) is not None:
            self.logged.append(("link", ends))

    def take_ids(self, table: str, n: int) -> list[int]:
        """The next ``n`` ids of the memory or the session sequence."""
        start = self.next_memory if table == "memories" else self.next_session
        if table == "memories":
            self.next_memory += n
        else:
            self.next_session += n
        return list(range(start, start + n))

    def advance(self, table: str) -> None:
        """Move the table's sequence past its largest id (ids kept by an import are never handed out). As DuckDB's
        store does, reading the sequence uses one id up, so ids after an import are the same in both."""
        if table == "memories":
            self.next_memory = max(self.next_memory, max(self.memories, default=0)) + 1
        else:
            self.next_session = max(self.next_session, max(self.sessions, default=0)) + 1

    def document(self, memory_id: int) -> DocumentRow:
        """A memory with its neighbours in its session (none without a session)."""
        m = self.memories[memory_id]
        before, after = self.neighbours(memory_id)
        return DocumentRow(
            m.id,
            m.content,
            m.event_time,
            json.loads(m.metadata),
            None if before is None else self.memories[before].content,
            None if after is None else self.memories[after].content,
            before,
        )

    def neighbours(self, memory_id: int) -> tuple[int | None, int | None]:
        """The ids before and after a stored memory in its session's episode."""
        session = self.memories[memory_id].session_id
        if session is None:
            return None, None
        episode = self.by_session[session]
        k = bisect_left(episode, memory_id)
        return (episode[k - 1] if k > 0 else None), (episode[k + 1] if k + 1 < len(episode) else None)
