"""The composition root: build_server wires settings, the memory node (owner or forwarder) and the tools."""

import hmac
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hebbian_memory import __version__
from hebbian_memory.app.wiring import build_node
from hebbian_memory.clock import Clock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder
from hebbian_memory.redaction import Redactor
from hebbian_memory.sharing.node import Node
from hebbian_memory.transport.handshake import (
    INSTRUCTIONS,
    INVALID_REQUEST,
    PARSE_ERROR,
    SERVER_NAME,
    SERVER_TITLE,
    Opening,
    StdioWire,
)
from hebbian_memory.transport.resources import NodeRef, register_resources
from hebbian_memory.transport.sessions import Sessions
from hebbian_memory.transport.tokens import TokenAuth, TokenFile
from hebbian_memory.transport.tools import AppContext, MemoryServer, register_tools

__all__ = [
    "LOOPBACK_HOSTS",
    "BearerTokenMiddleware",
    "BodyLimit",
    "HostOriginCheck",
    "build_http_app",
    "build_server",
    "serve_stdio",
]

log = logging.getLogger(__name__)


def build_server(
    settings: Settings,
    *,
    clock: Clock | None = None,
    embedder: Embedder | None = None,
    transport: str = "stdio",
    node: Node | None = None,
) -> MCPServer[AppContext]:
    """Build the MCP server. Without ``node`` its lifespan runs its own (stdio, in-memory clients); the HTTP
    transports pass a node that lives as long as the process, since SSE enters the lifespan per connection."""

    ref = NodeRef(node)

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppContext]) -> AsyncGenerator[AppContext]:
        if node is not None:
            async with _sessions(node, transport, settings) as context:
                yield context
            return
        own = build_node(settings, clock=clock, embedder=embedder)
        async with own.running(), _sessions(own, transport, settings) as context:
            ref.node = own
            try:
                yield context
            finally:
                ref.node = None

    server = MemoryServer(
        name=SERVER_NAME,
        title=SERVER_TITLE,
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # pyright: ignore[reportArgumentType] -- validated in config
        redactor=Redactor(settings.privacy.redact_secrets, settings.privacy.extra_patterns),
    )
    register_tools(server)
    register_resources(server, ref, settings.project, team=_team(settings, transport))
    return server


async def serve_stdio(server: MCPServer[AppContext], wire: StdioWire, opening: Opening) -> None:
    """Serve over a wire already claimed, whose opening line may have been answered (see ``handshake``)."""
    stdin, stdout = wire.sdk_streams(opening, _unreadable)
    async with stdio_server(stdin=anyio.wrap_file(stdin), stdout=anyio.wrap_file(stdout)) as (read, write):
        # As the SDK's own in-memory client does (mcp.client._memory) until the low-level server is public.
        lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def _unreadable(line: str) -> int | None:
    """The JSON-RPC error for a line the SDK's stdio reader cannot read and drops unanswered, read its way (see
    ``mcp.server.stdio``); None for a line it reads."""
    try:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as e:  # pydantic reports bad JSON and a wrong shape alike as this
        return PARSE_ERROR if any(err["type"] == "json_invalid" for err in e.errors()) else INVALID_REQUEST
    return None


@asynccontextmanager
async def _sessions(node: Node, transport: str, settings: Settings) -> AsyncGenerator[AppContext]:
    sessions = Sessions(node, transport, settings.project, settings.project_from_roots)
    try:
        yield AppContext(node=node, sessions=sessions, team=_team(settings, transport))
    finally:
        with anyio.CancelScope(shield=True):
            await sessions.close()


def _team(settings: Settings, transport: str) -> bool:
    """Whether calls come with team tokens (bound to projects): HTTP with http.tokens_file."""
    return bool(settings.http.tokens_file) and transport != "stdio"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def build_http_app(server: MCPServer[AppContext], settings: Settings, transport: str, host: str, port: int) -> ASGIApp:
    """The ASGI app for SSE or streamable HTTP. Outermost first: Host/Origin checks (against DNS rebinding), the
    bearer token when one is configured (the shared one, or a team token from http.tokens_file, which must load
    now), then the body limits; all answer before a refused request's body is read."""
    names = [*LOOPBACK_HOSTS, *settings.http.allowed_hosts]
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        names.append(f"[{host}]" if ":" in host else host)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names] + [name for name in names if name in LOOPBACK_HOSTS],
        allowed_origins=[f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")],
    )
    body_limit = settings.http.max_request_mb << 20
    if transport == "sse":
        app: ASGIApp = server.sse_app(transport_security=security, host=host, max_request_body_size=body_limit)
    else:
        app = server.streamable_http_app(transport_security=security, host=host, max_request_body_size=body_limit)
    app = BodyLimit(app, body_limit, settings.http.max_in_flight_mb << 20)
    if settings.http.token:
        app = BearerTokenMiddleware(app, settings.http.token)
    elif settings.http.tokens_file:
        tokens = TokenFile(Path(settings.http.tokens_file))
        tokens.load()
        app = TokenAuth(app, tokens)
    return HostOriginCheck(app, security)


async def _refuse(send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain"), *headers]}
    )
    await send({"type": "http.response.body", "body": text.encode()})


class HostOriginCheck:
    """Refuses a request naming a foreign Host (421) or Origin (403) from its headers alone. The SDK checks the
    same, but only after it has read the body: six foreign posts at once took the server from 218 to 535 MB."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self._app = app
        self._check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self._check.validate_request(Request(scope))  # headers only; the SDK checks the rest
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)


class BodyLimit:
    """Reads a request's body, at most ``per_request`` bytes (413), and while all requests together hold at most
    ``in_flight`` (503), then hands it on; a body counts until its request is answered."""

    def __init__(self, app: ASGIApp, per_request: int, in_flight: int) -> None:
        self._app = app
        self._per_request = per_request
        self._limit = in_flight
        self._held = 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self._per_request:
            await _refuse(send, 413, f"The request body is over {self._per_request >> 20} MiB (http.max_request_mb).")
            return
        chunks: list[Message] = []
        size = 0
        try:
            while True:
                message = await receive()
                chunks.append(message)
                if message["type"] != "http.request":
                    break
                more = len(message.get("body", b""))
                if size + more > self._per_request:
                    await _refuse(
                        send, 413, f"The request body is over {self._per_request >> 20} MiB (http.max_request_mb)."
                    )
                    return
                if self._held + more > self._limit:
                    log.warning("refused an HTTP request: %d bytes of request bodies already held", self._held)
                    await _refuse(
                        send,
                        503,
                        "The server is busy receiving other requests. Try again shortly.",
                        [(b"retry-after", b"1")],
                    )
                    return
                size += more
                self._held += more
                if not message.get("more_body", False):
                    break

            async def replay() -> Message:
                return chunks.pop(0) if chunks else await receive()

            await self._app(scope, replay, send)
        finally:
            self._held -= size
            chunks.clear()


class BearerTokenMiddleware:
    """Rejects every HTTP request that lacks ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b"A valid bearer token is required."})
                return
        await self._app(scope, receive, send)
