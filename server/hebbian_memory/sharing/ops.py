"""The memory operations as data: a name, a typed argument model, how the owner runs it on its MemoryService,
and how its result travels as JSON. The owner's own tool calls and forwarded calls take exactly the same path."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_serializer, model_validator

from hebbian_memory.models import (
    AssociateResult,
    ConsolidateResult,
    ExportResult,
    ForgetResult,
    ImportResult,
    MemoryInput,
    MemoryView,
    RecallResult,
    RememberResult,
    StatsResult,
)
from hebbian_memory.service.memory import DEFAULT_PROJECT, MemoryService
from hebbian_memory.service.portability import LinkRecord, MemoryRecord, Record, SessionRecord
from hebbian_memory.service.scope import ProjectScope

__all__ = [
    "ASSOCIATE",
    "CONSOLIDATE",
    "END_SESSION",
    "EXPORT",
    "FORGET",
    "GET",
    "IMPORT",
    "OPS",
    "RECALL",
    "RECENT",
    "REMEMBER_MANY",
    "SCOPED_STATS",
    "START_SESSION",
    "STATS",
    "AssociateArgs",
    "EndSessionArgs",
    "ExportArgs",
    "ForgetArgs",
    "GetArgs",
    "ImportArgs",
    "NoArgs",
    "Op",
    "OpArgs",
    "RecallArgs",
    "RecentArgs",
    "RememberManyArgs",
    "Scoped",
    "StartSessionArgs",
    "StatsArgs",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
A = TypeVar("A", bound="OpArgs")


class OpArgs(BaseModel):
    """An operation's arguments: checked where they are made (the tools, the CLI), sent to the owner as JSON and
    checked again there, so a misspelt or missing argument is an error, never a silent None."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoArgs(OpArgs):
    pass


class Scoped(OpArgs):
    """A call made in a client's session and project (the tools fill both in), and, for a team token, the
    projects it may use (None: every project; see ``service.scope``)."""

    session_id: int | None = None
    project: str = DEFAULT_PROJECT
    allowed: list[str] | None = Field(default=None, min_length=1)


class RememberManyArgs(Scoped):
    memories: list[MemoryInput]
    validate_only: bool = False
    used: list[int] | None = None


class RecallArgs(Scoped):
    query: str
    k: int | None = None
    tags: list[str] | None = None
    since: str | None = None
    until: str | None = None
    token_budget: int | None = None
    all_projects: bool = False
    min_relevance: float | None = None
    used: list[int] | None = None
    misled: list[int] | None = None


class AssociateArgs(Scoped):
    source_id: int
    target_ids: list[int]
    strength: float | None = None


class ForgetArgs(Scoped):
    ids: list[int] | None = None
    tags: list[str] | None = None
    before: str | None = None
    all_projects: bool = False


class StartSessionArgs(OpArgs):
    transport: str
    client_name: str | None = None
    client_version: str | None = None
    project: str = DEFAULT_PROJECT


class EndSessionArgs(OpArgs):
    session_id: int


class GetArgs(OpArgs):
    ids: list[int]
    allowed: list[str] | None = Field(default=None, min_length=1)


class StatsArgs(OpArgs):
    allowed: list[str] | None = Field(default=None, min_length=1)


class RecentArgs(OpArgs):
    limit: int
    project: str = DEFAULT_PROJECT


class ExportArgs(OpArgs):
    path: str


class ImportArgs(OpArgs):
    """One batch of an export file's records, all of ``kind`` (each keeps its file line, for the owner's errors)."""

    kind: Literal["session", "memory", "link"]
    records: list[Annotated[SessionRecord | MemoryRecord | LinkRecord, Field(discriminator="type")]]

    @model_validator(mode="after")
    def _one_kind(self) -> "ImportArgs":
        others = sorted({r.type for r in self.records} - {self.kind})
        if others:
            raise ValueError(f"a batch of {self.kind} records holds {', '.join(others)} records too")
        return self

    @field_serializer("records")
    def _as_json(self, records: list[Record]) -> list[dict[str, Any]]:
        """JSON values (times as ISO text) in every dump mode: the forwarder's wire sends ``model_dump()``."""
        return [r.model_dump(mode="json") for r in records]


@dataclass(frozen=True, slots=True)
class Op(Generic[A, T]):
    name: str
    args: type[A]
    run: Callable[[MemoryService, A], T]
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]


def _model(name: str, args: type[A], model: type[M], run: Callable[[MemoryService, A], M]) -> Op[A, M]:
    return Op(name, args, run, lambda result: result.model_dump(mode="json"), model.model_validate)


def _plain(name: str, args: type[A], adapter: TypeAdapter[T], run: Callable[[MemoryService, A], T]) -> Op[A, T]:
    return Op(name, args, run, lambda result: adapter.dump_python(result, mode="json"), adapter.validate_python)


def _scope(args: RecallArgs | ForgetArgs) -> str | None:
    """The project a recall or forget looks in; None: every project."""
    return None if args.all_projects else args.project


START_SESSION = _plain(
    "start_session",
    StartSessionArgs,
    TypeAdapter(int),
    lambda s, a: s.start_session(a.transport, a.client_name, a.client_version, a.project),
)
END_SESSION = _plain("end_session", EndSessionArgs, TypeAdapter(type(None)), lambda s, a: s.end_session(a.session_id))
REMEMBER_MANY = _plain(
    "remember_many",
    RememberManyArgs,
    TypeAdapter(list[RememberResult]),
    lambda s, a: s.remember_many(
        a.memories, a.session_id, a.project, a.validate_only, a.used, ProjectScope.of(a.allowed)
    ),
)
RECALL = _model(
    "recall",
    RecallArgs,
    RecallResult,
    lambda s, a: s.recall(
        a.query,
        a.k,
        a.tags,
        a.since,
        a.until,
        a.token_budget,
        _scope(a),
        a.session_id,
        a.min_relevance,
        a.used,
        a.misled,
        ProjectScope.of(a.allowed),
    ),
)
ASSOCIATE = _model(
    "associate",
    AssociateArgs,
    AssociateResult,
    lambda s, a: s.associate(a.source_id, a.target_ids, a.strength, a.session_id, ProjectScope.of(a.allowed)),
)
FORGET = _model(
    "forget",
    ForgetArgs,
    ForgetResult,
    lambda s, a: s.forget(a.ids, a.tags, a.before, _scope(a), ProjectScope.of(a.allowed)),
)

GET = _plain("get", GetArgs, TypeAdapter(list[MemoryView]), lambda s, a: s.get(a.ids, ProjectScope.of(a.allowed)))
RECENT = _plain("recent", RecentArgs, TypeAdapter(list[MemoryView]), lambda s, a: s.recent(a.limit, a.project))
EXPORT = _model("export", ExportArgs, ExportResult, lambda s, a: s.export(Path(a.path)))


def _import(service: MemoryService, args: ImportArgs) -> ImportResult:
    """The batch to the service's import of its kind (``ImportArgs`` checked that every record is of it)."""
    if args.kind == "session":
        return service.import_sessions([r for r in args.records if isinstance(r, SessionRecord)])
    if args.kind == "memory":
        return service.import_memories([r for r in args.records if isinstance(r, MemoryRecord)])
    return service.import_links([r for r in args.records if isinstance(r, LinkRecord)])


IMPORT = _model("import", ImportArgs, ImportResult, _import)
CONSOLIDATE = _model("consolidate", NoArgs, ConsolidateResult, lambda s, _a: s.consolidate())
STATS = _model("stats", NoArgs, StatsResult, lambda s, _a: s.stats())
# A token's stats: only its projects named (a new op, so the CLI's STATS with NoArgs stays as it is).
SCOPED_STATS = _model("scoped_stats", StatsArgs, StatsResult, lambda s, a: s.stats(ProjectScope.of(a.allowed)))

OPS: dict[str, Op[Any, Any]] = {
    op.name: op
    for op in (
        START_SESSION,
        END_SESSION,
        REMEMBER_MANY,
        RECALL,
        ASSOCIATE,
        FORGET,
        CONSOLIDATE,
        STATS,
        SCOPED_STATS,
        EXPORT,
        IMPORT,
        GET,
        RECENT,
    )
}
