"""Command line: the ``hebbian-memory`` group and its subcommands (serving in ``serve``, the rest one-off)."""

import logging
import sys
from pathlib import Path

import click

from hebbian_memory import __version__
from hebbian_memory.cli.commands import consolidate, doctor, reindex, search, stats
from hebbian_memory.cli.serve import serve
from hebbian_memory.cli.transfer import export_command, import_command, map_command
from hebbian_memory.config import load_settings
from hebbian_memory.errors import HebbianMemoryError

__all__ = ["main"]


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


for _command in (serve, consolidate, stats, search, doctor, reindex, map_command, export_command, import_command):
    main.add_command(_command)
