"""Moving memories in and out: export, import, and the map drawn from an export."""

import dataclasses
import json
import sys
from pathlib import Path

import click

from hebbian_memory.cli.common import JSON_OPTION, call, settings_of, shared_options, with_node

__all__ = ["export_command", "import_command", "map_command"]


@click.command("map")
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
@shared_options
@click.pass_context
def map_command(ctx: click.Context, output: Path, open_it: bool, as_json: bool) -> None:
    """Write a self-contained HTML page of the association graph: memories coloured by tier, links by
    strength, searchable and zoomable, with counts per tier and how idle links decay. Works offline."""
    import tempfile
    import webbrowser

    from hebbian_memory.app.wiring import settings_clock
    from hebbian_memory.cli import graphmap
    from hebbian_memory.sharing.ops import EXPORT, ExportArgs

    settings = settings_of(ctx)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "export.jsonl"
        call(settings, EXPORT, ExportArgs(path=str(export)))
        data = graphmap.graph_data(export, settings.plasticity, settings_clock(settings).now())
    output = output.expanduser().absolute()
    graphmap.write(output, data)  # owner-only: the page holds every memory's text
    summary = {"path": str(output), "memories": data["total_memories"], "shown": len(data["nodes"])}
    summary["links"] = len(data["links"])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        memories, links = summary["memories"], summary["links"]
        click.echo(
            f"Wrote {output}: {summary['shown']} of {memories} {'memory' if memories == 1 else 'memories'}, "
            f"{links} {'link' if links == 1 else 'links'}."
        )
    if open_it:
        webbrowser.open(output.as_uri())


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
@shared_options
@click.pass_context
def export_command(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Write every memory, link and session to PATH as JSON lines: a consistent backup, safe while servers run.

    The file is readable by you only; it holds your memories in plain text."""
    from hebbian_memory.sharing.ops import EXPORT, ExportArgs

    result = call(settings_of(ctx), EXPORT, ExportArgs(path=str(path.expanduser().absolute())))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(
            f"Exported {result.memories} memories, {result.links} links and {result.sessions} sessions "
            f"to {result.path} ({result.bytes:,} bytes)."
        )


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@JSON_OPTION
@shared_options
@click.pass_context
def import_command(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Read a file written by `export` (or any JSON lines of {"type": "memory", "content": ...}) into this
    memory. Memories already stored (same text in the same project) and links already present are skipped,
    so running it twice is harmless. Ids are kept where free."""
    from hebbian_memory.models import ImportResult
    from hebbian_memory.service import portability
    from hebbian_memory.sharing.node import Node
    from hebbian_memory.sharing.ops import IMPORT, ImportArgs

    async def run(node: Node) -> portability.ImportSummary:
        async def send(kind: str, records: list[dict[str, object]]) -> ImportResult:
            return await node.call(IMPORT, ImportArgs(kind=kind, records=records))  # pyright: ignore[reportArgumentType] -- the reader gives only the three kinds

        size = path.stat().st_size
        with click.progressbar(length=size, label="importing", file=sys.stderr, show_pos=False) as bar:
            return await portability.import_file(path, send, lambda done: bar.update(done - bar.pos))

    summary = with_node(settings_of(ctx), run)
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
