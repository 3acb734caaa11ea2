"""The export file's records: one pydantic model per line kind (header, session, memory, link), each line read
into one of them by :func:`parse`. They are also the typed rows an import batch carries to the owner."""

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from hebbian_memory.errors import InvalidInputError
from hebbian_memory.storage import UseRow

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "Header",
    "LinkRecord",
    "MemoryRecord",
    "Record",
    "SessionRecord",
    "Time",
    "parse",
]

FORMAT = "hebbian-memory-export"
FORMAT_VERSION = 1


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Time = Annotated[datetime, AfterValidator(_utc)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Set by the reader and sent along with the record, so the owner's refusal names the file's line.
    line: int | None = Field(default=None, ge=1)


class Header(_Record):
    type: Literal["header"]
    format: Literal["hebbian-memory-export"]
    version: int
    exported_at: Time
    schema_version: int
    embedding_model: str | None = None
    sessions: int
    memories: int
    links: int


class SessionRecord(_Record):
    type: Literal["session"] = "session"
    id: int
    transport: str = "import"
    client_name: str | None = None
    client_version: str | None = None
    project: str | None = None
    started_at: Time
    ended_at: Time | None = None


class MemoryRecord(_Record):
    type: Literal["memory"] = "memory"
    id: int | None = Field(default=None, ge=1)
    project: str = "default"
    content: str
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    created_at: Time | None = None
    updated_at: Time | None = None
    event_time: Time | None = None
    last_accessed_at: Time | None = None
    access_count: int = Field(default=0, ge=0)
    strength: float = Field(default=1.0, ge=0.0, le=1.0)
    tier: int = Field(default=1, ge=1, le=3)
    session_id: int | None = None
    replay_count: int = Field(default=0, ge=0)
    last_replayed_at: Time | None = None
    embedding_model: str | None = None
    embedding: str | None = Field(default=None, description="base64 of float32 little-endian values")
    # Its use record (usage.py), when an assistant reported on it: sums of surprises as of used_at.
    uses: float = Field(default=0.0, ge=0.0)
    misleads: float = Field(default=0.0, ge=0.0)
    used_at: Time | None = None
    cue: str | None = Field(default=None, description="base64 of float32 values: the queries it was used for")
    cue_weight: float = Field(default=0.0, ge=0.0)

    def vector(self, model: str, dim: int) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        """The stored embedding, if it was made by ``model`` and has ``dim`` values; else None (re-embed)."""
        return self._decoded(self.embedding, model, dim)

    def use(self, model: str, dim: int) -> UseRow | None:
        """Its use record (memory id 0: given at insert), if it has one; the cue only if ``model`` made it."""
        if self.used_at is None:
            return None
        cue = self._decoded(self.cue, model, dim)
        return UseRow(0, self.uses, self.misleads, self.used_at, cue, self.cue_weight if cue is not None else 0.0)

    def _decoded(self, encoded: str | None, model: str, dim: int) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        if encoded is None or self.embedding_model != model:
            return None
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:  # not base64: the text is still good, so embed it again
            return None
        if len(raw) != dim * 4:
            return None
        return np.frombuffer(raw, dtype="<f4").copy()


class LinkRecord(_Record):
    type: Literal["link"] = "link"
    source_id: int
    target_id: int
    weight: float = Field(ge=0.0, le=1.0)
    tier: int = Field(default=1, ge=1, le=3)
    kind: Literal["explicit", "coaccess", "temporal"] = "explicit"
    co_access_count: int = Field(default=0, ge=0)
    created_at: Time
    updated_at: Time
    last_strengthened_at: Time


Record = SessionRecord | MemoryRecord | LinkRecord
KINDS: dict[str, type[Record]] = {"session": SessionRecord, "memory": MemoryRecord, "link": LinkRecord}


def parse(line: str, number: int) -> Header | Record | None:
    """One line of an export file; None for a blank line."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"line {number}: not JSON ({e.msg}). Each line must be one JSON object.") from e
    if not isinstance(data, dict):
        raise InvalidInputError(f"line {number}: expected a JSON object, got {type(data).__name__}.")
    kind = data.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    data["line"] = number
    try:
        if kind == "header":
            found = Header.model_validate(data)
            if found.version > FORMAT_VERSION:
                raise InvalidInputError(
                    f"line {number}: export format version {found.version} is newer than this hebbian-memory reads "
                    f"({FORMAT_VERSION}). Upgrade hebbian-memory."
                )
            return found
        if kind not in KINDS:
            raise InvalidInputError(
                f"line {number}: unknown record type {kind!r}; expected one of header, {', '.join(KINDS)}."
            )
        return KINDS[str(kind)].model_validate(data)  # pyright: ignore[reportUnknownArgumentType]
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:3])
        raise InvalidInputError(f"line {number}: invalid {kind} record ({problems}).") from e
