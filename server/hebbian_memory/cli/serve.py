"""`hebbian-memory serve`: the only command that starts transports (and the only one that imports mcp)."""

import importlib
import ipaddress
import sys
import threading

import anyio
import click

from hebbian_memory.cli.common import our_error, settings_of, shared_options
from hebbian_memory.config import Settings, bytecode_cache_dir

__all__ = ["TRANSPORTS", "serve"]

TRANSPORTS = ("stdio", "sse", "streamable-http")


@click.command()
@click.option("--transport", type=click.Choice(TRANSPORTS), default="stdio", show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address for the HTTP transports (not loopback: needs a token, see above).",
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@shared_options
@click.pass_context
def serve(ctx: click.Context, transport: str, host: str, port: int) -> None:
    """Serve MCP over stdio (default), SSE or streamable HTTP.

    Any number of servers may run on one data dir: the first owns it and the others forward to it.

    Over HTTP, with a bearer token set (env HEBBIAN_MEMORY_HTTP_TOKEN, or http.token in the --config file; 16+
    characters, e.g. from `openssl rand -hex 24`), every request must carry 'Authorization: Bearer <token>'. An
    address other than loopback (--host) needs one."""
    settings = settings_of(ctx, serving=True)
    if transport != "stdio" and not _is_loopback(host) and not (settings.http.token or settings.http.tokens_file):
        raise click.ClickException(
            f"Refusing to serve memories on {host} without a token: anyone who can reach that address could read "
            "them. Set HEBBIAN_MEMORY_HTTP_TOKEN (16+ characters, e.g. from `openssl rand -hex 24`) and give "
            "clients the header 'Authorization: Bearer <token>', or bind to 127.0.0.1."
        )
    try:
        _keep_bytecode()
        if transport == "stdio":
            _serve_stdio(settings)
        else:
            anyio.run(_serve_http, settings, transport, host, port)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # a damaged database, say, found when the lifespan opens it (inside task groups)
        cause = our_error(e)
        if cause is None:
            raise
        raise click.ClickException(str(cause)) from e


def _keep_bytecode() -> None:
    """uvx runs tools with PYTHONDONTWRITEBYTECODE, so every launch compiled the MCP SDK and the rest from source
    again (measured through uvx: 2.1-2.6 s to import the server, 1.3-1.5 s with compiled files kept). Keep them
    in our cache dir instead, before the heavy imports; environments that write them as usual are left alone."""
    if sys.dont_write_bytecode and sys.pycache_prefix is None:
        sys.pycache_prefix = str(bytecode_cache_dir())
        sys.dont_write_bytecode = False


def _serve_stdio(settings: Settings) -> None:
    """Serve over stdio; with early_initialize, answer the handshake while the SDK loads (see ``handshake``)."""
    from hebbian_memory.transport.handshake import StdioWire

    if not (settings.early_initialize and StdioWire.supported()):
        from hebbian_memory.transport.app import build_server  # imports mcp (about 1 s): only for commands that serve

        build_server(settings).run("stdio")
        return
    wire = StdioWire.claim()
    loading = threading.Thread(target=importlib.import_module, args=("hebbian_memory.transport.app",), daemon=True)
    loading.start()
    opening = wire.open()
    loading.join()
    from hebbian_memory.transport.app import (  # loaded by now (or failing again, with its error)
        build_server,
        serve_stdio,
    )

    anyio.run(serve_stdio, build_server(settings), wire, opening)


async def _serve_http(settings: Settings, transport: str, host: str, port: int) -> None:
    """One memory node for the whole process (SSE enters the MCP lifespan once per connection)."""
    import uvicorn

    from hebbian_memory.app.wiring import build_node
    from hebbian_memory.transport.app import build_http_app, build_server

    async with build_node(settings).running() as node:
        server = build_server(settings, transport=transport, node=node)
        app = build_http_app(server, settings, transport, host, port)
        config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower())
        await uvicorn.Server(config).serve()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
