"""Command line: argument parsing and subcommands; the only place that starts transports."""

import dataclasses
import importlib
import ipaddress
import json
import logging
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import anyio
import click

from hebbian_memory import __version__
from hebbian_memory.config import Settings, bytecode_cache_dir, load_settings
from hebbian_memory.errors import HebbianMemoryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from click._termui_impl import ProgressBar

    from hebbian_memory.sharing.node import Node
    from hebbian_memory.sharing.ops import Op

T = TypeVar("T")
TRANSPORTS = ("stdio", "sse", "streamable-http")


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the database and indexes [env HEBBIAN_MEMORY_DATA_DIR; default: the user data dir].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A TOML file of settings over config/default.toml [env HEBBIAN_MEMORY_CONFIG].",
)
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(__version__, prog_name="hebbian-memory")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, config_file: Path | None, log_level: str | None) -> None:
    """hebbian-memory: long-term memory for MCP clients. With no command, serves MCP over stdio."""
    try:
        settings = load_settings(
            config_file, overrides={"data_dir": data_dir and str(data_dir), "log_level": log_level}
        )
    except HebbianMemoryError as e:
        raise click.ClickException(str(e)) from e
    # stdout carries the protocol in stdio mode: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = settings
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@main.command()
@click.option("--transport", type=click.Choice(TRANSPORTS), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for the HTTP transports.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, transport: str, host: str, port: int) -> None:
    """Serve MCP over stdio (default), SSE or streamable HTTP.

    Any number of servers may run on one data dir: the first owns it and the others forward to it."""
    settings = _settings(ctx)
    if transport != "stdio" and not _is_loopback(host) and not settings.http.token:
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
        cause = _our_error(e)
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
    from hebbian_memory.handshake import StdioWire

    if not (settings.early_initialize and StdioWire.supported()):
        from hebbian_memory.app import build_server  # imports mcp (about 1 s): only for commands that serve

        build_server(settings).run("stdio")
        return
    wire = StdioWire.claim()
    loading = threading.Thread(target=importlib.import_module, args=("hebbian_memory.app",), daemon=True)
    loading.start()
    opening = wire.open()
    loading.join()
    from hebbian_memory.app import build_server, serve_stdio  # loaded by now (or failing again, with its error)

    anyio.run(serve_stdio, build_server(settings), wire, opening)


async def _serve_http(settings: Settings, transport: str, host: str, port: int) -> None:
    """One memory node for the whole process (SSE enters the MCP lifespan once per connection)."""
    import uvicorn

    from hebbian_memory.app import build_http_app, build_node, build_server

    async with build_node(settings).running() as node:
        server = build_server(settings, transport=transport, node=node)
        app = build_http_app(server, settings, transport, host, port)
        config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower())
        await uvicorn.Server(config).serve()


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")


@main.command()
@JSON_OPTION
@click.pass_context
def consolidate(ctx: click.Context, as_json: bool) -> None:
    """Run one consolidation pass now (decay, tiers, pruning, replay) and say what it did."""
    from hebbian_memory.sharing.ops import CONSOLIDATE

    report = _call(_settings(ctx), CONSOLIDATE)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(
        f"Consolidated at {report.at:%Y-%m-%d %H:%M:%S} UTC: {report.links} links kept, {report.pruned} pruned, "
        f"{report.promoted} promoted, {report.demoted} demoted; {report.replayed} memories replayed, "
        f"{report.memory_tiers_changed} changed tier."
    )


@main.command()
@JSON_OPTION
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Memories and links per tier and kind, memories per project, the last consolidation."""
    from hebbian_memory.sharing.ops import STATS

    result = _call(_settings(ctx), STATS)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    tiers = ", ".join(f"L{t} {n}" for t, n in sorted(result.memories_by_tier.items())) or "none"
    link_tiers = ", ".join(f"L{t} {n}" for t, n in sorted(result.links_by_tier.items())) or "none"
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.links_by_kind.items())) or "none"
    last = f"{result.last_consolidation:%Y-%m-%d %H:%M} UTC" if result.last_consolidation else "never"
    click.echo(f"memories  {result.memories} ({tiers})")
    click.echo(f"links     {result.links} ({link_tiers}; {kinds})")
    for project, n in sorted(result.projects.items()):
        click.echo(f"project   {project}: {n}")
    click.echo(f"last consolidation  {last}")


@main.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 100), default=10, show_default=True, help="How many memories.")
@click.option("--project", help="Search this project [default: the configured one].")
@click.option("--all-projects", is_flag=True, help="Search every project.")
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable; all must match).")
@click.option("--since", help="Only events at or after this ISO 8601 date.")
@click.option("--until", help="Only events at or before this ISO 8601 date.")
@click.option(
    "--min-relevance",
    type=click.FloatRange(0, 1),
    help="Leave out hits below this relevance (0 shows the k best however weak) [default: the configured one].",
)
@JSON_OPTION
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    k: int,
    project: str | None,
    all_projects: bool,
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    min_relevance: float | None,
    as_json: bool,
) -> None:
    """Recall from the terminal: the memories that best match QUERY, best first."""
    from hebbian_memory.sharing.ops import RECALL

    settings = _settings(ctx)
    args: dict[str, object] = {
        "query": query,
        "k": k,
        "tags": list(tags) or None,
        "since": since,
        "until": until,
        "all_projects": all_projects,
        "project": project or settings.project,
        "min_relevance": min_relevance,
    }
    result = _call(settings, RECALL, args)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    if not result.hits:
        click.echo(result.note or "Nothing found.")
    for hit in result.hits:
        tag_text = f"  [{', '.join(hit.tags)}]" if hit.tags else ""
        via = f"  (linked via #{hit.via.memory_id})" if hit.via else ""
        click.echo(f"#{hit.id}  relevance {hit.relevance:.2f}  {hit.event_time:%Y-%m-%d}{tag_text}{via}")
        click.echo(textwrap.indent(textwrap.fill(hit.content, 100), "    "))


@main.command()
@JSON_OPTION
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the model files and hash, the data dir and its permissions, the owner process, the database and
    both indexes; say how to fix what is wrong. Exits 1 if anything is."""
    from hebbian_memory import doctor as checks
    from hebbian_memory.errors import HebbianMemoryError
    from hebbian_memory.models import StatsResult
    from hebbian_memory.sharing.ops import STATS

    settings = _settings(ctx)
    found = [checks.model(settings), checks.data_dir(settings), checks.owner(settings)]
    stats_result: StatsResult | None = None
    error: HebbianMemoryError | None = None
    try:
        stats_result = _call(settings, STATS)
    except click.ClickException as e:
        error = HebbianMemoryError(e.message)
    found += checks.database(stats_result, error, settings.data_dir / "memory.duckdb")
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(c) for c in found], indent=2))
    else:
        for check in found:
            click.echo(f"{'ok ' if check.ok else 'BAD'}  {check.name}: {check.detail}")
            if check.fix:
                click.echo(f"     fix: {check.fix}")
    if not all(c.ok for c in found):
        ctx.exit(1)


@main.command()
@click.option("--reembed", is_flag=True, help="Also embed every memory again (e.g. after replacing the model).")
@JSON_OPTION
@click.pass_context
def reindex(ctx: click.Context, reembed: bool, as_json: bool) -> None:
    """Rebuild the vector and keyword indexes from the database, with progress bars. Needs the data dir to
    itself: close the clients whose servers use it first. (Servers repair the indexes on their own at start;
    this is for doing it now, or re-embedding.)"""
    import contextlib

    from hebbian_memory.app import build_embedder
    from hebbian_memory.clock import SystemClock
    from hebbian_memory.memory import MemoryService
    from hebbian_memory.sharing.election import OwnerLock
    from hebbian_memory.storage import Store

    settings = _settings(ctx)
    lock = OwnerLock(settings.data_dir)
    if not lock.try_acquire():
        raise click.ClickException(
            f"A server is using {settings.data_dir} (see `hebbian-memory doctor`). Close the clients that started "
            "it, or stop it, and run reindex again."
        )
    try:
        with contextlib.ExitStack() as bars:
            shown: dict[str, ProgressBar[int]] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if as_json or total == 0:
                    return
                if stage not in shown:
                    bar = click.progressbar(length=total, label=f"{stage:<13}", file=sys.stderr, show_pos=True)
                    shown[stage] = bars.enter_context(bar)
                shown[stage].update(done - shown[stage].pos)

            clock = SystemClock()
            service = MemoryService(
                settings, Store.open(settings.data_dir / "memory.duckdb", clock.now()), build_embedder(settings), clock
            )
            try:
                service.warm_up(progress, reembed=reembed, rebuild=True)
                stats = service.stats()
            finally:
                service.close()
    except HebbianMemoryError as e:
        raise click.ClickException(str(e)) from e
    finally:
        lock.release()
    result = {
        "memories": stats.memories,
        "vector_index": stats.vector_index,
        "keyword_index": stats.keyword_index,
        "reembedded": stats.memories if reembed else 0,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        again = f"; {stats.memories} memories embedded again" if reembed else ""
        click.echo(f"Rebuilt both indexes over {stats.memories} memories{again}.")


@main.command("map")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hebbian-memory-map.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--open", "open_it", is_flag=True, help="Open it in the default browser.")
@JSON_OPTION
@click.pass_context
def map_command(ctx: click.Context, output: Path, open_it: bool, as_json: bool) -> None:
    """Write a self-contained HTML page of the association graph: memories coloured by tier, links by
    strength, searchable and zoomable, with counts per tier and how idle links decay. Works offline."""
    import tempfile
    import webbrowser
    from datetime import UTC, datetime

    from hebbian_memory import graphmap
    from hebbian_memory.sharing.ops import EXPORT

    settings = _settings(ctx)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "export.jsonl"
        _call(settings, EXPORT, {"path": str(export)})
        data = graphmap.graph_data(export, settings.plasticity, datetime.now(UTC))
    output = output.expanduser().absolute()
    output.write_text(graphmap.render(data), encoding="utf-8")
    summary = {"path": str(output), "memories": data["total_memories"], "shown": len(data["nodes"])}
    summary["links"] = len(data["links"])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"Wrote {output}: {summary['shown']} of {summary['memories']} memories, {summary['links']} links.")
    if open_it:
        webbrowser.open(output.as_uri())


@main.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
@click.pass_context
def export_command(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Write every memory, link and session to PATH as JSON lines: a consistent backup, safe while servers run.

    The file is readable by you only; it holds your memories in plain text."""
    from hebbian_memory.sharing.ops import EXPORT

    result = _call(_settings(ctx), EXPORT, {"path": str(path.expanduser().absolute())})
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(
            f"Exported {result.memories} memories, {result.links} links and {result.sessions} sessions "
            f"to {result.path} ({result.bytes:,} bytes)."
        )


@main.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@JSON_OPTION
@click.pass_context
def import_command(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Read a file written by `export` (or any JSON lines of {"type": "memory", "content": ...}) into this
    memory. Memories already stored (same text in the same project) and links already present are skipped,
    so running it twice is harmless. Ids are kept where free."""
    from hebbian_memory import portability
    from hebbian_memory.models import ImportResult
    from hebbian_memory.sharing.node import Node
    from hebbian_memory.sharing.ops import IMPORT

    async def run(node: Node) -> portability.ImportSummary:
        async def send(kind: str, records: list[dict[str, object]]) -> ImportResult:
            return await node.call(IMPORT, {"kind": kind, "records": records})

        size = path.stat().st_size
        with click.progressbar(length=size, label="importing", file=sys.stderr, show_pos=False) as bar:
            return await portability.import_file(path, send, lambda done: bar.update(done - bar.pos))

    summary = _with_node(_settings(ctx), run)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(summary), indent=2))
        return
    created, skipped = summary.created, summary.duplicates
    click.echo(
        f"Imported {created['memory']} memories, {created['link']} links and {created['session']} sessions; "
        f"skipped as already present: {skipped['memory']} memories, {skipped['link']} links, "
        f"{skipped['session']} sessions."
    )
    if summary.orphan_links:
        click.echo(f"{summary.orphan_links} links named memories not in the file and were left out.")
    if summary.redacted:
        click.echo(f"Secrets were redacted in {summary.redacted} memories.")


def _call(settings: Settings, op: "Op[T]", args: dict[str, object] | None = None) -> T:
    """One operation on the data dir: through its running owner, or as the owner for the moment."""

    async def run(node: "Node") -> T:
        return await node.call(op, dict(args or {}))

    return _with_node(settings, run)


def _with_node(settings: Settings, work: "Callable[[Node], Awaitable[T]]") -> T:
    """Run ``work`` with a node on the data dir (forwarding to a running owner, or owning it meanwhile)."""
    from hebbian_memory.app import build_node

    async def run() -> T:
        async with build_node(settings).running() as node:
            return await work(node)

    try:
        return anyio.run(run)
    except Exception as e:
        cause = _our_error(e)
        if cause is None:
            raise
        raise click.ClickException(str(cause)) from e


def _our_error(error: BaseException) -> HebbianMemoryError | None:
    """The first HebbianMemoryError in ``error``, looking inside exception groups."""
    if isinstance(error, HebbianMemoryError):
        return error
    if isinstance(error, BaseExceptionGroup):
        inner_errors = cast(tuple[BaseException, ...], error.exceptions)  # pyright: ignore[reportUnknownMemberType]
        for inner in inner_errors:
            found = _our_error(inner)
            if found is not None:
                return found
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
