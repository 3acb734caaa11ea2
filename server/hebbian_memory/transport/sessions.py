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
from mcp_types import ClientCapabilities, ListRootsResult, RootsCapability
from mcp_types.version import is_version_at_least

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.sharing.node import Node
from hebbian_memory.transport.tokens import Grant, grant_of

__all__ = ["INPUT_REQUIRED_VERSION", "ROOTS_TIMEOUT_S", "Session", "Sessions", "root_project"]

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0
# From this protocol version on a server cannot send the client a request mid-call; it asks for input in the
# call's answer (InputRequiredResult) and the client calls again with it.
INPUT_REQUIRED_VERSION = "2026-07-28"


@dataclass(frozen=True, slots=True)
class Session:
    id: int | None  # None while the disk refuses the session's row: its calls run without one
    project: str


class Sessions:
    """The memory sessions of one lifespan's clients. A session is what one client does in one sitting: a stdio
    server process or an SSE connection (each has its own lifespan), one streamable-HTTP MCP session (by its
    Mcp-Session-Id), or, for stateless streamable-HTTP requests, everything one client (by name and version)
    sends while the server runs. A session starts at its client's first call, which also settles its project
    (the client's first workspace root, else the configured project), and ends when the client goes, or at exit.
    With team tokens each token has sessions of its own, in its default project (its roots are not used)."""

    def __init__(self, node: Node, transport: str, default_project: str, project_from_roots: bool) -> None:
        self._node = node
        self._transport = transport
        self._default_project = default_project
        self._project_from_roots = project_from_roots
        self._open: dict[tuple[str, ...], Session] = {}
        self._lock = anyio.Lock()

    def wants_roots(self, ctx: Context[Any, Any]) -> bool:
        """Whether this call must carry the client's roots: a 2026-era client's first call, if it offers roots
        (the answer asks for them and the client's retry brings them, see ``tools.Roots``)."""
        if _grant(ctx) is not None:  # a team token's session uses its default project: roots are not asked for
            return False
        return _input_required(ctx) and self._key(ctx) not in self._open and self._offers_roots(ctx)

    async def of(self, ctx: Context[Any, Any], roots: ListRootsResult | None = None) -> Session:
        """The session of this call's client, started now if this is its first call; ``roots`` are the roots
        a 2026-era client sent with the call (a handshake-era client is asked here)."""
        params = ctx.session.client_params
        client = params.client_info if params else None
        key = self._key(ctx)
        async with self._lock:
            session = self._open.get(key)
            if session is None or session.id is None:  # new, or its row could not be stored yet: try again
                grant = _grant(ctx)
                if session is not None:
                    project = session.project
                elif grant is not None:
                    project = grant.projects[0]
                else:
                    project = await self._project(ctx, roots)
                session_id = await self._node.start_session(
                    self._transport, client.name if client else None, client.version if client else None, project
                )
                first, session = session is None, Session(session_id, project)
                self._open[key] = session
                if first and key[0] == "mcp-session":
                    # Connection.exit_stack is the SDK's per-connection teardown; the per-request ServerSession
                    # has no public way to reach it.
                    connection: Connection = ctx.session._connection  # pyright: ignore[reportPrivateUsage]
                    connection.exit_stack.push_async_callback(self._end, key)
            return session

    def _key(self, ctx: Context[Any, Any]) -> tuple[str, ...]:
        grant = _grant(ctx)
        return self._client_key(ctx) + (("token", grant.name) if grant is not None else ())

    def _client_key(self, ctx: Context[Any, Any]) -> tuple[str, ...]:
        if self._transport != "streamable-http":
            return ("lifespan",)
        mcp_session = (ctx.headers or {}).get("mcp-session-id")
        if mcp_session:
            return ("mcp-session", mcp_session)
        params = ctx.session.client_params
        client = params.client_info if params else None
        return ("client", str(client and client.name), str(client and client.version))

    def _offers_roots(self, ctx: Context[Any, Any]) -> bool:
        return self._project_from_roots and ctx.session.check_client_capability(
            ClientCapabilities(roots=RootsCapability())
        )

    async def _project(self, ctx: Context[Any, Any], roots: ListRootsResult | None) -> str:
        if roots is None and not _input_required(ctx) and self._offers_roots(ctx):
            roots = await self._list_roots(ctx)
        if roots is not None and roots.roots:
            return root_project(str(roots.roots[0].uri))
        if self._project_from_roots:
            log.info(
                "the client gave no workspace root; its session uses the configured project %r", self._default_project
            )
        return self._default_project

    async def _list_roots(self, ctx: Context[Any, Any]) -> ListRootsResult | None:
        """Ask a handshake-era client for its roots with a roots/list request."""
        try:
            with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
                # Roots are deprecated by the 2026-07-28 protocol; clients of every version still offer them.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                return await ctx.session.list_roots()  # pyright: ignore[reportDeprecated]
        except Exception as e:  # a client that declares roots but cannot answer: fall back, do not fail the call
            log.warning(
                "the client declared roots but roots/list failed (%r); using project %r", e, self._default_project
            )
            return None

    async def _end(self, key: tuple[str, ...]) -> None:
        session = self._open.pop(key, None)
        if session is not None and session.id is not None:
            with contextlib.suppress(HebbianMemoryError):  # the process is closing; the node ends what is left
                await self._node.end_session(session.id)

    async def close(self) -> None:
        for key in list(self._open):
            await self._end(key)


def _grant(ctx: Context[Any, Any]) -> Grant | None:
    return grant_of(ctx.request_context.request)


def _input_required(ctx: Context[Any, Any]) -> bool:
    """Whether the call's protocol asks the client for input in its answer rather than with a request of its own."""
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def root_project(uri: str) -> str:
    """The project named by a workspace root: its folder path for file URIs, else the URI itself."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path).rstrip("/") or "/"
        return f"//{parsed.netloc}{path}" if parsed.netloc not in ("", "localhost") else path
    return uri
