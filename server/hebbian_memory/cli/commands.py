"""The one-off commands about the memory itself: consolidate, stats, search, doctor and reindex."""

import dataclasses
import json
import sys
import textwrap
from typing import TYPE_CHECKING

import click

from hebbian_memory.cli.common import JSON_OPTION, call, our_error, settings_of, shared_options
from hebbian_memory.errors import HebbianMemoryError

__all__ = ["consolidate", "doctor", "reindex", "search", "stats"]

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


@click.command()
@JSON_OPTION
@shared_options
@click.pass_context
def consolidate(ctx: click.Context, as_json: bool) -> None:
    """Run one consolidation pass now (decay, tiers, pruning, replay) and say what it did."""
    from hebbian_memory.sharing.ops import CONSOLIDATE, NoArgs

    report = call(settings_of(ctx), CONSOLIDATE, NoArgs())
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(
        f"Consolidated at {report.at:%Y-%m-%d %H:%M:%S} UTC: {report.links} links kept, {report.pruned} pruned, "
        f"{report.promoted} promoted, {report.demoted} demoted; {report.replayed} memories replayed, "
        f"{report.memory_tiers_changed} changed tier."
    )


@click.command()
@JSON_OPTION
@shared_options
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Memories and links per tier and kind, memories per project, the last consolidation."""
    from hebbian_memory.sharing.ops import STATS, NoArgs

    result = call(settings_of(ctx), STATS, NoArgs())
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


@click.command()
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
@shared_options
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
    from hebbian_memory.sharing.ops import RECALL, RecallArgs

    settings = settings_of(ctx)
    args = RecallArgs(
        query=query,
        k=k,
        tags=list(tags) or None,
        since=since,
        until=until,
        all_projects=all_projects,
        project=project or settings.project,
        min_relevance=min_relevance,
    )
    result = call(settings, RECALL, args)
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


@click.command()
@JSON_OPTION
@shared_options
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the model files and hash, the data dir and its permissions, the owner process, the database and
    both indexes (with PostgreSQL: the server, pgvector, the schema and its search indexes); say how to fix what
    is wrong. Exits 1 if anything is."""
    from pathlib import Path

    from hebbian_memory.app.wiring import DATABASE, postgres_health, redact_url
    from hebbian_memory.cli import checks
    from hebbian_memory.errors import HebbianMemoryError
    from hebbian_memory.models import StatsResult
    from hebbian_memory.sharing.ops import STATS, NoArgs

    settings = settings_of(ctx)
    found = [checks.model(settings), checks.data_dir(settings), checks.owner(settings)]
    where: str | Path = settings.data_dir / DATABASE
    if settings.storage.backend == "postgres":
        # Read before the operation below opens the store: opening makes a missing index, hiding it.
        where = redact_url(settings.storage.url)
        try:
            found += checks.postgres(postgres_health(settings), None, where)
        except HebbianMemoryError as e:
            found += checks.postgres(None, e, where)
    stats_result: StatsResult | None = None
    error: HebbianMemoryError | None = None
    try:
        stats_result = call(settings, STATS, NoArgs())
    except click.ClickException as e:
        error = (our_error(e.__cause__) if e.__cause__ else None) or HebbianMemoryError(e.message)
    except Exception as e:  # doctor reports what it finds, never a traceback
        error = HebbianMemoryError(f"{type(e).__name__}: {e}")
    found += checks.database(stats_result, error, where)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(c) for c in found], indent=2))
    else:
        for check in found:
            click.echo(f"{'ok ' if check.ok else 'BAD'}  {check.name}: {check.detail}")
            if check.fix:
                click.echo(f"     fix: {check.fix}")
    if not all(c.ok for c in found):
        ctx.exit(1)


@click.command()
@click.option("--reembed", is_flag=True, help="Also embed every memory again (e.g. after replacing the model).")
@JSON_OPTION
@shared_options
@click.pass_context
def reindex(ctx: click.Context, reembed: bool, as_json: bool) -> None:
    """Rebuild the vector and keyword indexes from the database, with progress bars. Needs the data dir to
    itself: close the clients whose servers use it first. (Servers repair the indexes on their own at start;
    this is for doing it now, or re-embedding.)"""
    import contextlib

    from hebbian_memory.app.wiring import build_embedder, open_service, settings_clock
    from hebbian_memory.files import private_dir
    from hebbian_memory.sharing.election import OwnerLock

    settings = settings_of(ctx)
    try:
        private_dir(settings.data_dir)
    except HebbianMemoryError as e:
        raise click.ClickException(str(e)) from e
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

            service = open_service(settings, settings_clock(settings), build_embedder(settings))
            try:
                # The model loads only if something is embedded (--reembed, or memories of another model).
                service.warm_up(progress, reembed=reembed, rebuild=True, load_model=False)
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
