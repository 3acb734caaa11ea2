"""Client sessions and their projects, as the MCP layer sees them (this module and tools are the only ones
that know about MCP connections)."""

import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import anyio
from mcp.server.connection import Connection
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ClientCapabilities, RootsCapability

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.sharing.node import Node

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    project: str


class Sessions:
    """The memory sessions of one lifespan's clients. A session is what one client does in one sitting: a stdio
    server process or an SSE connection (each has its own lifespan), one streamable-HTTP MCP session (by its
    Mcp-Session-Id), or, for stateless streamable-HTTP requests, everything one client (by name and version)
    sends while the server runs. A session starts at its client's first call, which also settles its project
    (the client's first workspace root, else the configured project), and ends when the client goes, or at exit."""

    def __init__(self, node: Node, transport: str, default_project: str, project_from_roots: bool) -> None:
        self._node = node
        self._transport = transport
        self._default_project = default_project
        self._project_from_roots = project_from_roots
        self._open: dict[tuple[str, ...], Session] = {}
        self._lock = anyio.Lock()

    async def of(self, ctx: Context[Any, Any]) -> Session:
        params = ctx.session.client_params
        client = params.client_info if params else None
        key: tuple[str, ...] = ("lifespan",)
        mcp_session = (ctx.headers or {}).get("mcp-session-id")
        if self._transport == "streamable-http":
            key = (
                ("mcp-session", mcp_session)
                if mcp_session
                else ("client", str(client and client.name), str(client and client.version))
            )
        async with self._lock:
            session = self._open.get(key)
            if session is None:
                project = await self._project(ctx)
                session_id = await self._node.start_session(
                    self._transport, client.name if client else None, client.version if client else None, project
                )
                session = self._open[key] = Session(session_id, project)
                if mcp_session:
                    # Connection.exit_stack is the SDK's per-connection teardown; the per-request ServerSession
                    # has no public way to reach it.
                    connection: Connection = ctx.session._connection  # pyright: ignore[reportPrivateUsage]
                    connection.exit_stack.push_async_callback(self._end, key)
            return session

    async def _project(self, ctx: Context[Any, Any]) -> str:
        if self._project_from_roots and ctx.session.check_client_capability(
            ClientCapabilities(roots=RootsCapability())
        ):
            try:
                with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
                    # Deprecated by the 2026-07-28 protocol, which has no roots; clients of earlier versions offer them.
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    result = await ctx.session.list_roots()  # pyright: ignore[reportDeprecated]
            except Exception as e:  # a client that declares roots but cannot answer: fall back, do not fail the call
                log.warning(
                    "the client declared roots but roots/list failed (%r); using project %r", e, self._default_project
                )
            else:
                if result.roots:
                    return root_project(str(result.roots[0].uri))
        return self._default_project

    async def _end(self, key: tuple[str, ...]) -> None:
        session = self._open.pop(key, None)
        if session is not None:
            with contextlib.suppress(HebbianMemoryError):  # the process is closing; the node ends what is left
                await self._node.end_session(session.id)

    async def close(self) -> None:
        for key in list(self._open):
            await self._end(key)


def root_project(uri: str) -> str:
    """The project named by a workspace root: its folder path for file URIs, else the URI itself."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path).rstrip("/") or "/"
        return f"//{parsed.netloc}{path}" if parsed.netloc not in ("", "localhost") else path
    return uri
