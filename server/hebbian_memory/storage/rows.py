"""The row types the store takes and returns: plain data, no SQL and no backend's types. Times are aware UTC
datetimes in and out; vectors are float32 numpy arrays."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "PURGE_DUE",
    "Chain",
    "Changes",
    "Counts",
    "DocumentRow",
    "Event",
    "Filters",
    "Link",
    "LinkVersion",
    "MemoryRow",
    "MemoryState",
    "NewMemory",
    "SessionRow",
    "StoredMemory",
    "Totals",
    "UseRow",
]

# The meta key noting that the store still holds deleted rows' bytes (set by ``delete(purge_due=True)``, cleared
# by a finished ``purge``).
PURGE_DUE = "purge_due"

# A link as a consolidation pass read it: (updated_at, co_access_count). Every write of a link moves one of them
# (a growth counts +1 even when the clock has not moved), so an unchanged pair means an unchanged link.
LinkVersion = tuple[datetime, int]

# An access event: (memory id, session id or None, kind, when). Kinds: remembered, reinforced, recalled, linked.
Event = tuple[int, int | None, str, datetime]


@dataclass(frozen=True, slots=True)
class NewMemory:
    content: str
    content_hash: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    importance: float
    event_time: datetime
    embedding: npt.NDArray[np.float32]
    embedding_model: str
    session_id: int | None
    project: str = "default"


@dataclass(frozen=True, slots=True)
class Changes:
    """What the store's writers (this process or others sharing the database) changed after a point of its change
    log: what a server's caches must catch up on. Applying it twice does no harm."""

    head: int  # the point this reaches: pass it as ``after`` next time
    stored: frozenset[int]  # memories stored, imported or re-embedded (some may be gone again)
    removed: frozenset[int]  # memories deleted, with their links
    links: frozenset[tuple[int, int]]  # links written or deleted (read them to know which)
    uses: frozenset[int] = frozenset()  # memories whose use record was written (read them to know how)
    # False: the log was trimmed past ``after`` and no longer says everything since; reload what is cached.
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Link:
    """A link as stored (``source_id < target_id``); ``weight`` is as of ``updated_at``."""

    source_id: int
    target_id: int
    weight: float
    tier: int
    kind: str
    co_access_count: int
    created_at: datetime
    updated_at: datetime
    last_strengthened_at: datetime


@dataclass(frozen=True, slots=True)
class UseRow:
    """What an assistant said of a memory it was shown: how much it was used and how often it misled, each a
    sum of surprises (usage.py) as of ``used_at``, the last report; and the context it was used in."""

    memory_id: int
    uses: float
    misleads: float
    used_at: datetime
    cue: npt.NDArray[np.float32] | None = None  # unit mean of the queries it was used for (None: none known)
    cue_weight: float = 0.0  # the surprises that mean is weighted by


@dataclass(frozen=True, slots=True)
class MemoryState:
    """What the consolidation pass needs of a memory."""

    id: int
    tier: int
    uses: int  # accesses plus replays
    importance: float
    last_use: datetime  # the later of the last access and the last replay
    last_replayed: datetime | None
    strength: float


@dataclass(frozen=True, slots=True)
class Chain:
    """New memories continue an episode: link them in order, the first to ``after`` (if any)."""

    after: int | None
    weight: float


@dataclass(frozen=True, slots=True)
class Filters:
    """What a memory must match: all of ``tags``, an event time in [since, until], and the project (None: any)."""

    tags: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.tags) or self.since is not None or self.until is not None or self.project is not None


@dataclass(frozen=True, slots=True)
class MemoryRow:
    id: int
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    created_at: datetime
    updated_at: datetime
    event_time: datetime
    access_count: int


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A memory with the text of its neighbours in the same session (None at an episode's ends)."""

    id: int
    content: str
    event_time: datetime
    metadata: dict[str, Any]
    previous: str | None
    next: str | None
    previous_id: int | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session whole, as exported and imported."""

    id: int
    transport: str
    client_name: str | None
    client_version: str | None
    project: str | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredMemory:
    """A memory row whole, as exported and imported. On import ``id`` is the id wanted (None: any) and
    ``use.memory_id`` is ignored (the row's own id is used)."""

    id: int | None
    project: str
    content: str
    content_hash: str
    tags: tuple[str, ...]  # as stored; their order is not part of the contract (DuckDB's merge keeps none)
    metadata: dict[str, Any]
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
    use: UseRow | None = None  # its use record, when an assistant reported on it


@dataclass(frozen=True, slots=True)
class Totals:
    """How many rows an export snapshot holds."""

    sessions: int
    memories: int
    links: int


@dataclass(frozen=True, slots=True)
class Counts:
    """Memories and links per tier, links per kind."""

    memories_by_tier: dict[int, int]
    links_by_tier: dict[int, int]
    links_by_kind: dict[str, int]
