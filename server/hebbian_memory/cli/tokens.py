"""`hebbian-memory token new|revoke`: team tokens in the http.tokens_file (see ``transport.tokens``)."""

import json
import re
import secrets
import tomllib
from pathlib import Path

import click

from hebbian_memory.cli.common import GROUP_JSON_OPTION, JSON_OPTION, settings_of, shared_options
from hebbian_memory.errors import ConfigError
from hebbian_memory.files import write_private
from hebbian_memory.transport.tokens import TokenEntry, digest, parse_tokens

__all__ = ["token_group"]

_TABLE = re.compile(r"^\s*\[\[\s*token\s*\]\]\s*(#.*)?$")
_FILE_OPTION = click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The tokens file (default: http.tokens_file of the settings).",
)


@click.group("token")
@shared_options
@GROUP_JSON_OPTION
def token_group() -> None:
    """Team tokens for the HTTP transports: one per person, each bound to the projects it may use."""


@token_group.command("new")
@click.argument("name")
@click.option(
    "--project",
    "projects",
    multiple=True,
    required=True,
    help="A project it may read and write (repeat for more; the first is its default).",
)
@_FILE_OPTION
@JSON_OPTION
@shared_options
@click.pass_context
def new_token(ctx: click.Context, name: str, projects: tuple[str, ...], path: Path | None, as_json: bool) -> None:
    """Add a token for NAME to the tokens file and print it, once: the file keeps only its sha256. A running
    server accepts it from its next request."""
    target = _file(ctx, path)
    text = _text(target)
    secret = secrets.token_urlsafe(32)
    table = (
        f"\n[[token]]\nname = {json.dumps(name)}\nsha256 = {json.dumps(digest(secret))}\n"
        f"projects = [{', '.join(json.dumps(p, ensure_ascii=False) for p in projects)}]\n"
    )
    updated = (text if not text or text.endswith("\n") else text + "\n") + table
    _check(updated, target)  # a taken name, a bad project name: nothing is written
    _write(target, updated)
    if as_json:
        click.echo(json.dumps({"name": name, "token": secret, "projects": list(projects), "file": str(target)}))
        return
    click.echo(secret)
    click.echo(
        f"Token {name!r} added to {target} for {', '.join(projects)}; shown only now. Give it to {name} as "
        "'Authorization: Bearer <token>'.",
        err=True,
    )


@token_group.command("revoke")
@click.argument("name")
@_FILE_OPTION
@JSON_OPTION
@shared_options
@click.pass_context
def revoke_token(ctx: click.Context, name: str, path: Path | None, as_json: bool) -> None:
    """Remove NAME's token from the tokens file (other lines and comments stay). A running server refuses it
    from its next request."""
    target = _file(ctx, path)
    text = _text(target)
    kept = [block for block in _blocks(text) if _name_of(block) != name]
    updated = "".join(kept)
    if updated == text:
        raise click.ClickException(f"No token named {name!r} in {target}.")
    _check(updated, target)
    _write(target, updated)
    if as_json:
        click.echo(json.dumps({"name": name, "revoked": True, "file": str(target)}))
    else:
        click.echo(f"Token {name!r} revoked.", err=True)


def _file(ctx: click.Context, path: Path | None) -> Path:
    if path is not None:
        return path.expanduser().absolute()
    configured = settings_of(ctx).http.tokens_file
    if not configured:
        raise click.ClickException("Say which file: --file PATH, or set http.tokens_file.")
    return Path(configured)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise click.ClickException(f"Cannot read {path}: {e.strerror}") from e


def _blocks(text: str) -> list[str]:
    """The file's text cut before each [[token]] line: what precedes the first, then one piece per table."""
    blocks = [""]
    for line in text.splitlines(keepends=True):
        if _TABLE.match(line):
            blocks.append("")
        blocks[-1] += line
    return blocks


def _name_of(block: str) -> object:
    try:
        tables = tomllib.loads(block).get("token")
    except tomllib.TOMLDecodeError:
        return None
    return tables[0].get("name") if isinstance(tables, list) and tables else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _check(text: str, path: Path) -> list[TokenEntry]:
    try:
        return parse_tokens(text, str(path))
    except ConfigError as e:
        raise click.ClickException(f"{e}. Nothing was changed.") from e


def _write(path: Path, text: str) -> None:
    try:
        write_private(path, text)
    except OSError as e:
        raise click.ClickException(f"Cannot write {path}: {e.strerror}. Nothing was changed.") from e
