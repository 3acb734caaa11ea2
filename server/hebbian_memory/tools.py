"""MCP tool adapters: typed arguments, one service call each, typed errors turned into tool errors."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.memory import MemoryService
from hebbian_memory.models import (
    AssociateResult,
    ForgetResult,
    MemoryInput,
    RecallResult,
    RememberManyResult,
    RememberResult,
)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What the lifespan hands to every tool call."""

    service: MemoryService
    session_id: int


AppCtx = Context[AppContext, Any]
T = TypeVar("T")

INSTRUCTIONS = """\
hebbian-memory is your long-term memory across conversations. Use `recall` at the start of a task and whenever
the user refers to something from before; use `remember` for facts, preferences, decisions and events worth
keeping (one self-contained fact per memory, with tags). Use `associate` to link memories that belong together,
and `forget` when the user asks you to delete something."""

_DATE = "ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T14:30:00Z (UTC when no offset is given)"


async def _run(ctx: AppCtx, call: Callable[[MemoryService, int], T]) -> T:
    """Run a blocking service call in a worker thread; our typed errors become tool errors for the model."""
    app = ctx.request_context.lifespan_context
    try:
        return await anyio.to_thread.run_sync(call, app.service, app.session_id)
    except HebbianMemoryError as e:
        raise ToolError(str(e)) from e


def register_tools(server: MCPServer[AppContext]) -> None:
    """Add the four memory tools to ``server``."""

    @server.tool(
        title="Remember",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def remember(
        ctx: AppCtx,
        content: Annotated[str, Field(description="The text to remember: one self-contained fact, note or event.")],
        tags: Annotated[
            list[str] | None, Field(description="Short labels for filtering later, e.g. ['project-x', 'decision'].")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Small JSON facts about the memory, e.g. {'speaker': 'Ana'}.")
        ] = None,
        importance: Annotated[float, Field(description="0 (trivial) to 1 (vital); default 0.5.")] = 0.5,
        event_time: Annotated[
            str | None, Field(description=f"When the remembered thing happened, if not now: {_DATE}.")
        ] = None,
    ) -> RememberResult:
        """Store a memory and return its id. Remembering identical text again returns the same id and
        reinforces that memory instead of storing a copy. The memory is recallable as soon as this returns."""
        return await _run(
            ctx, lambda s, sid: s.remember(content, tags, metadata, importance, event_time, session_id=sid)
        )

    @server.tool(
        title="Remember many",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def remember_many(
        ctx: AppCtx,
        memories: Annotated[list[MemoryInput], Field(description="The memories to store, in order (up to 1000).")],
    ) -> RememberManyResult:
        """Store many memories in one call (bulk import; much faster than one remember per memory). They are
        stored in the order given, as one episode. If any item is invalid, none is stored and the error names it."""
        return await _run(ctx, lambda s, sid: RememberManyResult(results=s.remember_many(memories, session_id=sid)))

    @server.tool(title="Recall", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def recall(
        ctx: AppCtx,
        query: Annotated[str, Field(description="What to look for, in words or as a question.")],
        k: Annotated[int | None, Field(description="How many memories to return (1-100, default 10).")] = None,
        tags: Annotated[list[str] | None, Field(description="Only memories carrying all of these tags.")] = None,
        since: Annotated[str | None, Field(description=f"Only memories of events at or after this {_DATE}.")] = None,
        until: Annotated[str | None, Field(description=f"Only memories of events at or before this {_DATE}.")] = None,
        token_budget: Annotated[
            int | None,
            Field(description="Fit the hits into about this many tokens: the best that fit, up to k of them."),
        ] = None,
    ) -> RecallResult:
        """Find memories by meaning and by keywords, best first; near-duplicates are left out. Each hit has
        its id, content, tags, score (with its semantic and keyword parts) and times."""
        return await _run(ctx, lambda s, _sid: s.recall(query, k, tags, since, until, token_budget))

    @server.tool(
        title="Associate",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def associate(
        ctx: AppCtx,
        source_id: Annotated[int, Field(description="Id of a memory (from remember or recall).")],
        target_ids: Annotated[list[int], Field(description="Ids of the memories to link it to.")],
        strength: Annotated[
            float | None, Field(description="How strongly they belong together, above 0 up to 1 (default 0.5).")
        ] = None,
    ) -> AssociateResult:
        """Link memories that belong together, or strengthen existing links (weights never pass 1).
        Returns every link with its weight and whether it is new."""
        return await _run(ctx, lambda s, sid: s.associate(source_id, target_ids, strength, session_id=sid))

    @server.tool(
        title="Forget",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def forget(
        ctx: AppCtx,
        ids: Annotated[list[int] | None, Field(description="Ids of the memories to delete.")] = None,
        tags: Annotated[list[str] | None, Field(description="Delete memories carrying all of these tags.")] = None,
        before: Annotated[str | None, Field(description=f"Delete memories stored before this {_DATE}.")] = None,
    ) -> ForgetResult:
        """Permanently delete memories: their text, embeddings, index entries and links. Give at least one of
        ids, tags or before; with several, only memories matching all of them are deleted."""
        return await _run(ctx, lambda s, _sid: s.forget(ids, tags, before))
