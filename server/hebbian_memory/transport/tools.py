"""MCP tool adapters: typed arguments, one service call each, typed errors turned into tool errors."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult, ListRootsResult, ToolAnnotations
from pydantic import Field, Strict, ValidationError

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.models import (
    AssociateResult,
    ForgetResult,
    MemoryInput,
    RecallResult,
    RememberManyResult,
    RememberResult,
    StatsResult,
)
from hebbian_memory.redaction import Redactor
from hebbian_memory.sharing.node import Node
from hebbian_memory.sharing.ops import (
    ASSOCIATE,
    FORGET,
    RECALL,
    REMEMBER_MANY,
    SCOPED_STATS,
    AssociateArgs,
    ForgetArgs,
    Op,
    OpArgs,
    RecallArgs,
    RememberManyArgs,
    Scoped,
    StatsArgs,
)
from hebbian_memory.transport.sessions import Sessions
from hebbian_memory.transport.tokens import grant_of
from hebbian_memory.transport.tool_errors import explain

__all__ = [
    "PROGRESS_STEP",
    "AppContext",
    "AppCtx",
    "Bool",
    "Float",
    "Ids",
    "Int",
    "MemoryServer",
    "Roots",
    "Str",
    "register_tools",
]


@dataclass(frozen=True, slots=True)
class AppContext:
    """What the lifespan hands to every tool call."""

    node: Node
    sessions: Sessions
    team: bool = False  # team tokens (http.tokens_file): every call carries a Grant, which bounds its projects


AppCtx = Context[AppContext, Any]
# Arguments are strict, as JSON types: true is not the id 1, "2" is not 2, "yes" is not true (a wrong type gets
# an error that says what to send; see tool_errors). An integer is still a number.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
T = TypeVar("T")
A = TypeVar("A", bound=OpArgs)

PROGRESS_STEP = 100  # remember_many stores larger batches in parts of this size, reporting progress after each
_DATE = "ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T14:30:00Z (UTC when no offset is given)"


_USED = (
    "Ids of memories from earlier recalls that you actually relied on (for your answer, your code, a decision) "
    "since your last report; send them with your next recall or remember. This is how memory learns what is useful: "
    "used memories come up sooner for what they answer, and memories used together are linked. Leave out hits you "
    "only skimmed."
)
_MISLED = (
    "Ids of memories from earlier recalls that were wrong, outdated or beside the point of what you asked; they "
    "will rank lower from now on. Name a memory in used or in misled, not both."
)
Ids = list[Annotated[int, Strict()]]

_PROJECT = (
    "The project (namespace) to use instead of this session's: by default memories go to and come from the "
    "project of the client's workspace, or the configured one."
)


async def _client_roots(ctx: AppCtx) -> ListRoots | None:
    """Ask a 2026-era client for its workspace roots when its session starts; the SDK puts the question in the
    call's answer and runs the tool when the client calls again with the roots."""
    return ListRoots() if ctx.request_context.lifespan_context.sessions.wants_roots(ctx) else None


# Every tool takes it: any tool may be a client's first call, which settles the session's project.
Roots = Annotated[ListRootsResult | None, Resolve(_client_roots)]


async def _run(ctx: AppCtx, roots: ListRootsResult | None, op: Op[A, T], args: A, project: str | None) -> T:
    """Run one memory operation (here or in the owner process) in this client's session and project; our
    typed errors become tool errors."""
    app = ctx.request_context.lifespan_context
    grant = grant_of(ctx.request_context.request)
    if app.team and grant is None:  # TokenAuth admits no request without one; this is its second line
        raise ToolError("A team token is required for this call.")
    try:
        session = await app.sessions.of(ctx, roots)
        update: dict[str, Any] = {}
        if isinstance(args, Scoped):
            update = {"session_id": session.id, "project": session.project if project is None else project}
        if grant is not None and isinstance(args, Scoped | StatsArgs):
            update["allowed"] = list(grant.projects)
        if update:
            args = args.model_copy(update=update)
        return await app.node.call(op, args)
    except HebbianMemoryError as e:
        raise ToolError(str(e)) from e


def register_tools(server: MCPServer[AppContext]) -> None:
    """Add the memory tools to ``server``."""

    @server.tool(
        title="Remember",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def remember(
        ctx: AppCtx,
        roots: Roots,
        content: Annotated[Str, Field(description="The text to remember: one self-contained fact, note or event.")],
        tags: Annotated[
            list[Str] | None, Field(description="Short labels for filtering later, e.g. ['project-x', 'decision'].")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Small JSON facts about the memory, e.g. {'speaker': 'Ana'}.")
        ] = None,
        importance: Annotated[Float, Field(description="0 (trivial) to 1 (vital); default 0.5.")] = 0.5,
        event_time: Annotated[
            Str | None, Field(description=f"When the remembered thing happened, if not now: {_DATE}.")
        ] = None,
        project: Annotated[Str | None, Field(description=_PROJECT)] = None,
        used: Annotated[
            Ids | None,
            Field(description="Ids of recalled memories this one was written from or relies on. " + _USED),
        ] = None,
    ) -> RememberResult:
        """Store a memory and return its id. Remembering identical text again returns the same id and
        reinforces that memory instead of storing a copy. The memory is recallable as soon as this returns.
        If you wrote it from recalled memories, name them in used: they are linked to it."""
        item = MemoryInput(content=content, tags=tags, metadata=metadata, importance=importance, event_time=event_time)
        args = RememberManyArgs(memories=[item], used=used)
        (result,) = await _run(ctx, roots, REMEMBER_MANY, args, project)
        return result

    @server.tool(
        title="Remember many",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def remember_many(
        ctx: AppCtx,
        roots: Roots,
        memories: Annotated[list[MemoryInput], Field(description="The memories to store, in order (up to 1000).")],
        project: Annotated[Str | None, Field(description=_PROJECT)] = None,
    ) -> RememberManyResult:
        """Store many memories in one call (bulk import; much faster than one remember per memory). They are
        stored in the order given, as one episode. If any item is invalid, none is stored and the error names it.
        Batches over 100 are stored in parts of 100, reporting progress after each: if the server dies before
        this call answers, some parts may be stored. Sending the same batch again is then safe: memories already
        stored are recognised (same ids, nothing stored twice) and the rest are stored."""
        items = list(memories)
        if len(items) <= PROGRESS_STEP:
            whole = RememberManyArgs(memories=items)
            return RememberManyResult(results=await _run(ctx, roots, REMEMBER_MANY, whole, project))
        # In parts, so the client sees progress; checked whole first, so one bad item still stores none.
        await _run(ctx, roots, REMEMBER_MANY, RememberManyArgs(memories=items, validate_only=True), project)
        results: list[RememberResult] = []
        for start in range(0, len(items), PROGRESS_STEP):
            part = RememberManyArgs(memories=items[start : start + PROGRESS_STEP])
            results += await _run(ctx, roots, REMEMBER_MANY, part, project)
            await ctx.report_progress(len(results), len(items), f"stored {len(results)} of {len(items)} memories")
        return RememberManyResult(results=results)

    @server.tool(title="Recall", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def recall(
        ctx: AppCtx,
        roots: Roots,
        query: Annotated[Str, Field(description="What to look for, in words or as a question.")],
        k: Annotated[Int | None, Field(description="How many memories to return (1-100, default 10).")] = None,
        tags: Annotated[list[Str] | None, Field(description="Only memories carrying all of these tags.")] = None,
        since: Annotated[Str | None, Field(description=f"Only memories of events at or after this {_DATE}.")] = None,
        until: Annotated[Str | None, Field(description=f"Only memories of events at or before this {_DATE}.")] = None,
        token_budget: Annotated[
            Int | None,
            Field(description="Fit the hits into about this many tokens: the best that fit, up to k of them."),
        ] = None,
        project: Annotated[Str | None, Field(description=_PROJECT)] = None,
        all_projects: Annotated[Bool, Field(description="Search every project, not just this one.")] = False,
        min_relevance: Annotated[
            Float | None,
            Field(
                description="Leave out hits below this relevance (0-1). Default: the server's setting. 0 returns "
                "the k best matches however weak, e.g. to browse a topic."
            ),
        ] = None,
        used: Annotated[Ids | None, Field(description=_USED)] = None,
        misled: Annotated[Ids | None, Field(description=_MISLED)] = None,
    ) -> RecallResult:
        """Find memories by meaning and by keywords, best first, in this project; near-duplicates are left
        out. Memories linked to the best matches (stored next to them, or used together with them before) are
        brought along. Each hit has its id, content, tags, relevance (0-1, comparable across recalls: how strongly
        it matches what was asked; below about 0.5 it is probably only on a related topic), score (orders this
        recall's hits; with its semantic and keyword parts), times, and why it was returned: reason "direct"
        (matched the query) or "linked" (brought by a link to a better match), and via (the link). Hits below
        min_relevance are left out; when none is left, hits is empty and note says so: take that as "not
        remembered" rather than guessing. Report on earlier hits with used (the ones you relied on) and misled
        (wrong or off the point): that is how recall learns what helps you."""
        args = RecallArgs(
            query=query,
            k=k,
            tags=tags,
            since=since,
            until=until,
            token_budget=token_budget,
            all_projects=all_projects,
            min_relevance=min_relevance,
            used=used,
            misled=misled,
        )
        return await _run(ctx, roots, RECALL, args, project)

    @server.tool(
        title="Associate",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def associate(
        ctx: AppCtx,
        roots: Roots,
        source_id: Annotated[Int, Field(description="Id of a memory (from remember or recall).")],
        target_ids: Annotated[list[Int], Field(description="Ids of the memories to link it to.")],
        strength: Annotated[
            Float | None, Field(description="How strongly they belong together, above 0 up to 1 (default 0.5).")
        ] = None,
    ) -> AssociateResult:
        """Link memories that belong together, or strengthen existing links (weights never pass 1).
        Returns every link with its weight and whether it is new."""
        args = AssociateArgs(source_id=source_id, target_ids=target_ids, strength=strength)
        return await _run(ctx, roots, ASSOCIATE, args, None)

    @server.tool(
        title="Forget",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def forget(
        ctx: AppCtx,
        roots: Roots,
        ids: Annotated[list[Int] | None, Field(description="Ids of the memories to delete.")] = None,
        tags: Annotated[list[Str] | None, Field(description="Delete memories carrying all of these tags.")] = None,
        before: Annotated[Str | None, Field(description=f"Delete memories stored before this {_DATE}.")] = None,
        project: Annotated[Str | None, Field(description=_PROJECT)] = None,
        all_projects: Annotated[
            Bool, Field(description="Let tags and before select in every project, not just this one.")
        ] = False,
    ) -> ForgetResult:
        """Permanently delete memories: their text, embeddings, index entries and links. Give at least one of
        ids, tags or before; with several, only memories matching all of them are deleted. Ids work in any
        project; tags and before select only in this session's project unless all_projects is set."""
        args = ForgetArgs(ids=ids, tags=tags, before=before, all_projects=all_projects)
        return await _run(ctx, roots, FORGET, args, project)

    @server.tool(title="Memory stats", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def stats(ctx: AppCtx, roots: Roots) -> StatsResult:
        """How much is stored and learned: memories and links per tier (1 working, 2 episodic, 3 semantic),
        links per kind, memories per project, and when consolidation last ran."""
        return await _run(ctx, roots, SCOPED_STATS, StatsArgs(), None)


class MemoryServer(MCPServer[AppContext]):
    """The SDK's server, with argument errors a model can act on (see ``tool_errors``), secrets masked in every
    tool error, and tool descriptions without the source's indentation (Python before 3.13 keeps it in
    docstrings)."""

    def __init__(self, *args: Any, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redactor = redactor

    def add_tool(self, fn: Callable[..., Any], *args: Any, description: str | None = None, **kwargs: Any) -> None:
        super().add_tool(fn, *args, description=description or _unwrapped(fn.__doc__ or ""), **kwargs)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:  # its text names only the tool; the SDK logs its traceback
            raise
        except ToolError as e:
            # An error may quote what the caller sent (a date, a value of the wrong type): its secrets are masked
            # here, where every tool error passes, before the model reads it and the SDK logs it.
            tool = self._tool_manager.get_tool(name)  # pyright: ignore[reportPrivateUsage] -- no public getter
            if isinstance(e.__cause__, ValidationError) and tool is not None:
                explained = explain(name, e.__cause__, tool.parameters)
                raise ToolError(self._redactor.text(explained).text) from e.__cause__
            masked = self._redactor.text(str(e))
            if not masked.kinds:
                raise
            raise ToolError(masked.text) from e


def _unwrapped(doc: str) -> str:
    """A docstring as prose: its paragraphs' lines joined, so no source line breaks or indentation remain."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))
