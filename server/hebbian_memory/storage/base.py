"""The row types the store takes and returns: plain data, no SQL."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Chain", "DocumentRow", "Filters", "Link", "MemoryRow", "MemoryState", "NewMemory", "UseRow"]


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
