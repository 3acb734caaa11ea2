"""Command line: the ``hebbian-memory`` group and its subcommands (serving in ``serve``, the rest one-off)."""

import os

import click

from hebbian_memory import __version__
from hebbian_memory.cli.commands import consolidate, doctor, reindex, search, stats
from hebbian_memory.cli.common import GROUP_JSON_OPTION, shared_options
from hebbian_memory.cli.migrate import migrate_command
from hebbian_memory.cli.serve import serve
from hebbian_memory.cli.tokens import token_group
from hebbian_memory.cli.transfer import export_command, import_command, map_command

__all__ = ["main"]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@shared_options
@GROUP_JSON_OPTION
@click.version_option(__version__, prog_name="hebbian-memory")
@click.pass_context
def main(ctx: click.Context) -> None:
    """hebbian-memory: long-term memory for MCP clients. With no command, serves MCP over stdio.

    The options below also work after a command's name (where they win over the same option before it)."""
    # Every file this process makes is its user's alone: DuckDB and usearch create theirs with the default mode
    # (DuckDB a new WAL after each checkpoint), and what they hold are memories.
    os.umask(0o077)
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


for _command in (
    serve,
    consolidate,
    stats,
    search,
    doctor,
    reindex,
    map_command,
    export_command,
    import_command,
    migrate_command,
    token_group,
):
    main.add_command(_command)
