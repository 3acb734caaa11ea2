"""What the commands share: their settings, the --json option, and a memory node for one operation."""

from typing import TYPE_CHECKING, TypeVar, cast

import anyio
import click

from hebbian_memory.config import Settings
from hebbian_memory.errors import HebbianMemoryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hebbian_memory.sharing.node import Node
    from hebbian_memory.sharing.ops import Op

T = TypeVar("T")

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def call(settings: Settings, op: "Op[T]", args: dict[str, object] | None = None) -> T:
    """One operation on the data dir: through its running owner, or as the owner for the moment."""

    async def run(node: "Node") -> T:
        return await node.call(op, dict(args or {}))

    return with_node(settings, run)


def with_node(settings: Settings, work: "Callable[[Node], Awaitable[T]]") -> T:
    """Run ``work`` with a node on the data dir (forwarding to a running owner, or owning it meanwhile)."""
    from hebbian_memory.app import build_node

    async def run() -> T:
        async with build_node(settings).running() as node:
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
