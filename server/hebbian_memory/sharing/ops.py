"""The memory operations as data: a name, how the owner runs it on its MemoryService, and how its result
travels as JSON. The owner's own tool calls and forwarded calls take exactly the same path."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from hebbian_memory.memory import DEFAULT_PROJECT, MemoryService
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
from hebbian_memory.portability import LinkRecord, MemoryRecord, SessionRecord

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Args = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    name: str
    run: Callable[[MemoryService, Args], T]
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]


def _model(name: str, model: type[M], run: Callable[[MemoryService, Args], M]) -> Op[M]:
    return Op(name, run, lambda result: result.model_dump(mode="json"), model.model_validate)


def _plain(name: str, adapter: TypeAdapter[T], run: Callable[[MemoryService, Args], T]) -> Op[T]:
    return Op(name, run, lambda result: adapter.dump_python(result, mode="json"), adapter.validate_python)


def _scope(args: Args) -> str | None:
    """The project a recall or forget looks in; None: every project."""
    return None if args.get("all_projects") else args.get("project", DEFAULT_PROJECT)


START_SESSION = _plain(
    "start_session",
    TypeAdapter(int),
    lambda s, a: s.start_session(
        a["transport"], a.get("client_name"), a.get("client_version"), a.get("project", DEFAULT_PROJECT)
    ),
)
END_SESSION = _plain("end_session", TypeAdapter(type(None)), lambda s, a: s.end_session(a["session_id"]))
REMEMBER_MANY = _plain(
    "remember_many",
    TypeAdapter(list[RememberResult]),
    lambda s, a: s.remember_many(
        [MemoryInput.model_validate(m) for m in a["memories"]],
        a.get("session_id"),
        a.get("project", DEFAULT_PROJECT),
        bool(a.get("validate_only", False)),
        a.get("used"),
    ),
)
RECALL = _model(
    "recall",
    RecallResult,
    lambda s, a: s.recall(
        a["query"],
        a.get("k"),
        a.get("tags"),
        a.get("since"),
        a.get("until"),
        a.get("token_budget"),
        _scope(a),
        a.get("session_id"),
        a.get("min_relevance"),
        a.get("used"),
        a.get("misled"),
    ),
)
ASSOCIATE = _model(
    "associate",
    AssociateResult,
    lambda s, a: s.associate(a["source_id"], a["target_ids"], a.get("strength"), a.get("session_id")),
)
FORGET = _model("forget", ForgetResult, lambda s, a: s.forget(a.get("ids"), a.get("tags"), a.get("before"), _scope(a)))

GET = _plain("get", TypeAdapter(list[MemoryView]), lambda s, a: s.get(a["ids"]))
RECENT = _plain(
    "recent", TypeAdapter(list[MemoryView]), lambda s, a: s.recent(a["limit"], a.get("project", DEFAULT_PROJECT))
)
EXPORT = _model("export", ExportResult, lambda s, a: s.export(Path(a["path"])))


def _import(service: MemoryService, args: Args) -> ImportResult:
    kind, records = args["kind"], args["records"]
    if kind == "session":
        return service.import_sessions([SessionRecord.model_validate(r) for r in records])
    if kind == "memory":
        return service.import_memories([MemoryRecord.model_validate(r) for r in records])
    return service.import_links([LinkRecord.model_validate(r) for r in records])


IMPORT = _model("import", ImportResult, _import)
CONSOLIDATE = _model("consolidate", ConsolidateResult, lambda s, _a: s.consolidate())
STATS = _model("stats", StatsResult, lambda s, _a: s.stats())

OPS: dict[str, Op[Any]] = {
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
        EXPORT,
        IMPORT,
        GET,
        RECENT,
    )
}
