"""Frozen value types shared by the service and the tool layer (they double as tool result schemas)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssociateResult",
    "Association",
    "ConsolidateResult",
    "ExportResult",
    "ForgetResult",
    "ImportResult",
    "LinkVia",
    "MemoryInput",
    "MemoryView",
    "RecallHit",
    "RecallResult",
    "RememberManyResult",
    "RememberResult",
    "ScoreParts",
    "StatsResult",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class MemoryInput(_Frozen):
    """One memory to store, as remember_many takes it. Strict, like the tools' arguments: "0.9" is not a number."""

    model_config = ConfigDict(frozen=True, strict=True)

    content: str = Field(description="The text to remember: one self-contained fact, note or event.")
    tags: list[str] | None = Field(default=None, description="Short labels for filtering later.")
    metadata: dict[str, Any] | None = Field(default=None, description="Small JSON facts, e.g. {'speaker': 'Ana'}.")
    importance: float = Field(default=0.5, description="0 (trivial) to 1 (vital).")
    event_time: str | None = Field(default=None, description="When it happened, ISO 8601; default: now.")


class RememberResult(_Frozen):
    id: int = Field(description="The memory's id; use it with associate and forget.")
    created: bool = Field(description="False when identical content was already stored and was reinforced instead.")
    redacted: list[str] = Field(
        default=[], description="Kinds of secrets replaced by [REDACTED:<kind>] before storing, e.g. ['api-key']."
    )


class MemoryView(_Frozen):
    """A stored memory as a resource shows it."""

    id: int
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    created_at: datetime
    event_time: datetime
    access_count: int


class RememberManyResult(_Frozen):
    results: list[RememberResult] = Field(description="One result per memory sent, in the same order.")


class ScoreParts(_Frozen):
    dense: float = Field(description="Semantic similarity of query and memory, 0..1 after per-query normalisation.")
    lexical: float = Field(description="Keyword (BM25) match, 0..1 after per-query normalisation.")
    cosine: float = Field(description="Raw cosine similarity between query and memory embeddings.")


class LinkVia(_Frozen):
    memory_id: int = Field(description="The memory the activation came from.")
    kind: Literal["explicit", "coaccess", "temporal"]
    weight: float = Field(description="The link's weight in [0, 1].")
    hops: int = Field(description="Links between the direct match it started from and this memory.")


class RecallHit(_Frozen):
    id: int
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    score: float = Field(description="The fused score that orders the hits; only comparable within one recall.")
    relevance: float = Field(
        description="How strongly this memory matches what was asked beyond a shared topic, 0-1, comparable "
        "across recalls: below about 0.5 it is probably only on a related topic."
    )
    parts: ScoreParts
    created_at: datetime
    event_time: datetime = Field(description="When what the memory records happened (defaults to created_at).")
    reason: Literal["direct", "linked"] = Field(
        default="direct",
        description="direct: matched the query; linked: here because a link to a better match brought it (see via), "
        "not for its own match.",
    )
    via: LinkVia | None = Field(default=None, description="The link that passed activation to this memory, if any.")


class RecallResult(_Frozen):
    hits: list[RecallHit]
    note: str | None = Field(
        default=None,
        description="Why there are no hits, when there are none: nothing stored, or nothing relevant; and what "
        "became of a use report (used/misled) that could not be learned in full.",
    )
    tokens: int = Field(default=0, description="Estimated tokens of the hits' content together (4 chars/token).")
    truncated: bool = Field(
        default=False,
        description="True when more hits matched than fit in the server's result size limit; ask for a smaller k, "
        "a token_budget, or a narrower query.",
    )


class Association(_Frozen):
    source_id: int
    target_id: int
    weight: float = Field(description="Link strength in [0, 1].")
    tier: int = Field(description="1 working, 2 episodic, 3 semantic.")
    kind: Literal["explicit", "coaccess", "temporal"]
    created: bool = Field(description="True when this call made the link; False when it strengthened an existing one.")


class AssociateResult(_Frozen):
    links: list[Association]


class ForgetResult(_Frozen):
    forgotten: int = Field(description="How many memories were deleted.")
    ids: list[int] = Field(description="Their ids (at most the first 1000).")
    note: str | None = Field(
        default=None,
        description="Set when the disk refused part of the clean-up after the delete: what is still pending.",
    )


class StatsResult(_Frozen):
    memories: int
    memories_by_tier: dict[int, int] = Field(description="1 working, 2 episodic, 3 semantic.")
    links: int
    links_by_tier: dict[int, int]
    links_by_kind: dict[str, int]
    projects: dict[str, int] = Field(description="Memories per project.")
    last_consolidation: datetime | None
    vector_index: int = Field(default=0, description="Memories in the vector index (a cache: equals memories).")
    keyword_index: int = Field(default=0, description="Memories in the keyword index (a cache: equals memories).")


class ConsolidateResult(_Frozen):
    at: datetime
    links: int = Field(description="Links after the pass.")
    pruned: int
    promoted: int
    demoted: int
    replayed: int
    memory_tiers_changed: int


class ExportResult(_Frozen):
    path: str = Field(description="The file written (JSON lines; readable by its owner only).")
    sessions: int
    memories: int
    links: int
    bytes: int


class ImportResult(_Frozen):
    """What one batch of an import did."""

    ids: list[int] = Field(description="The id here of each record sent, in order (existing ids for duplicates).")
    created: int = Field(description="Records stored.")
    duplicates: int = Field(description="Records already stored (same text in the same project, or same session).")
    redacted: int = Field(default=0, description="Memories in which secrets were redacted.")
