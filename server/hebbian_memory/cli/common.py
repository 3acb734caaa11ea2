"""What the commands share: the options every command takes (before or after its name), their settings and
logging, and a memory node for one operation."""

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import click

from hebbian_memory.config import Settings, load_settings
from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.redaction import RedactingFormatter, Redactor

__all__ = [
    "GROUP_JSON_OPTION",
    "JSON_OPTION",
    "LOG_LEVELS",
    "call",
    "our_error",
    "settings_of",
    "shared_options",
    "with_node",
]

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hebbian_memory.sharing.node import Node
    from hebbian_memory.sharing.ops import Op, OpArgs

T = TypeVar("T")
A = TypeVar("A", bound="OpArgs")
F = TypeVar("F", bound="Callable[..., Any]")

# ctx.meta is shared by the group's context and the command's: the shared options given so far, by name.
_GIVEN = "hebbian_memory.given"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _given(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """Keep a shared option where both contexts see it; the group parses first, so the command's value wins."""
    given: dict[str, object] = ctx.meta.setdefault(_GIVEN, {})
    if value is not None and value is not False:
        given[str(param.name)] = value
    return given.get(str(param.name), value)


_SHARED = (
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        callback=_given,
        help="Folder for the database and indexes [env HEBBIAN_MEMORY_DATA_DIR; default: the user data dir].",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        expose_value=False,
        callback=_given,
        help="A TOML file of settings over config/default.toml [env HEBBIAN_MEMORY_CONFIG].",
    ),
    click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        expose_value=False,
        callback=_given,
        help="What to log to stderr [default: INFO for serve (env HEBBIAN_MEMORY_LOG_LEVEL), WARNING for the "
        "other commands].",
    ),
)
# A command's --json is its own value or the group's (``hebbian-memory --json stats``).
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, callback=_given, help="Print the result as JSON (for scripts)."
)
GROUP_JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    expose_value=False,
    callback=_given,
    help="Print the result as JSON, for the commands that print one (for scripts).",
)


def shared_options(command: F) -> F:
    """--data-dir, --config and --log-level, on the group and on every command: they work in either place."""
    for option in reversed(_SHARED):
        command = option(command)
    return command


def settings_of(ctx: click.Context, serving: bool = False) -> Settings:
    """The settings the shared options give; logging is set up with them. A server logs at the configured
    level; a one-off command only warnings and errors unless --log-level asks for more."""
    given: dict[str, Any] = ctx.meta.get(_GIVEN, {})
    data_dir, log_level = given.get("data_dir"), given.get("log_level")
    try:
        settings = load_settings(
            given.get("config_file"), overrides={"data_dir": data_dir and str(data_dir), "log_level": log_level}
        )
    except HebbianMemoryError as e:
        raise click.ClickException(str(e)) from e
    level = settings.log_level
    if not (serving or log_level):
        level = max(level, "WARNING", key=LOG_LEVELS.index)
    # stdout carries the protocol in stdio mode, and command output otherwise: every log line goes to stderr,
    # secrets masked (a line may quote a caller's input: a resource URI, an error, a traceback).
    handler = logging.StreamHandler(sys.stderr)
    redactor = Redactor(settings.privacy.redact_secrets, settings.privacy.extra_patterns)
    handler.setFormatter(RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    return settings


def call(settings: Settings, op: "Op[A, T]", args: A) -> T:
    """One operation on the data dir: through its running owner, or as the owner for the moment."""

    async def run(node: "Node") -> T:
        return await node.call(op, args)

    return with_node(settings, run)


def with_node(settings: Settings, work: "Callable[[Node], Awaitable[T]]") -> T:
    """Run ``work`` with a node on the data dir (forwarding to a running owner, or owning it meanwhile)."""
    from hebbian_memory.app.wiring import build_node

    async def run() -> T:
        # stats, export and the like embed nothing: loading the model (quantizing it, at first) would be waste.
        async with build_node(settings, preload_model=False).running() as node:
            return await work(node)

    try:
        return anyio.run(run)
    except Exception as e:
        cause = our_error(e)
        if cause is None:
            raise
        raise click.ClickException(str(cause)) from e


def our_error(error: BaseException) -> HebbianMemoryError | None:
    """The first HebbianMemoryError in ``error``, looking inside exception groups."""
    if isinstance(error, HebbianMemoryError):
        return error
    if isinstance(error, BaseExceptionGroup):
        inner_errors = cast(tuple[BaseException, ...], error.exceptions)  # pyright: ignore[reportUnknownMemberType]
        for inner in inner_errors:
            found = our_error(inner)
            if found is not None:
                return found
    return None
