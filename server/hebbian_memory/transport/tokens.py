"""Team tokens: one bearer token per person, each bound to the projects it may use (``http.tokens_file``).

The file is TOML, one ``[[token]]`` table per person::

    [[token]]
    name = "alice"
    sha256 = "<hex digest of the token>"   # or token = "<the token itself>", 16+ characters
    projects = ["acme/web", "acme/infra"]  # what it may read and write; the first is its default project

``TokenFile`` reads it again whenever its size, mtime or inode changes (one stat per request), so a token removed
from it is refused from its next request. An edit that does not parse keeps the tokens in force and logs an error;
a file that is gone refuses everyone. ``TokenAuth`` admits a request whose token is in the file and hands its
``Grant`` to the tools through the ASGI scope (``grant_of``)."""

import hashlib
import hmac
import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hebbian_memory import inputs
from hebbian_memory.config import MIN_TOKEN_CHARS
from hebbian_memory.errors import ConfigError, HebbianMemoryError

if TYPE_CHECKING:  # the CLI's token commands import this module: no web framework at their start
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["GRANT_KEY", "Grant", "TokenAuth", "TokenEntry", "TokenFile", "digest", "grant_of", "parse_tokens"]

log = logging.getLogger(__name__)

GRANT_KEY = "hebbian_memory.grant"
_HEX = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a request's token names and the projects it may use (the first its default)."""

    name: str
    projects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenEntry:
    grant: Grant
    sha256: bytes


def digest(token: str) -> str:
    """The hex sha256 a tokens file may keep instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(text: str, source: str) -> list[TokenEntry]:
    """The entries of a tokens file's text; ConfigError naming the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source} is not valid TOML: {e}") from e
    extra = sorted(set(raw) - {"token"})
    tables: object = raw.get("token", [])
    if extra or not isinstance(tables, list):
        raise ConfigError(f"{source}: expected only [[token]] tables, found {extra or ['token = ...']}")
    rows = cast("list[object]", tables)
    entries = [_entry(table, f"{source}, token {n}") for n, table in enumerate(rows, start=1)]
    names: list[str] = [e.grant.name for e in entries]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{source}: the name {name!r} is used by more than one token")
    digests = [e.sha256 for e in entries]
    if len(set(digests)) < len(digests):
        raise ConfigError(f"{source}: two entries hold the same token")
    return entries


def _entry(table: Any, where: str) -> TokenEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a [[token]] table")
    fields: dict[str, Any] = table  # pyright: ignore[reportUnknownVariableType]
    unknown = sorted(set(fields) - {"name", "token", "sha256", "projects"})
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    name = fields.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: name must be 1-64 letters, digits or _.@-")
    token, hexed = fields.get("token"), fields.get("sha256")
    if (token is None) == (hexed is None):
        raise ConfigError(f"{where} ({name}): give exactly one of token and sha256")
    if token is not None and (not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS):
        raise ConfigError(f"{where} ({name}): token must be at least {MIN_TOKEN_CHARS} characters")
    if hexed is not None and (not isinstance(hexed, str) or not _HEX.fullmatch(hexed.lower())):
        raise ConfigError(f"{where} ({name}): sha256 must be 64 hex digits")
    projects: Any = fields.get("projects")
    if not isinstance(projects, list) or not projects or not all(isinstance(p, str) for p in projects):  # pyright: ignore[reportUnknownVariableType]
        raise ConfigError(f"{where} ({name}): projects must be a non-empty list of project names")
    try:
        names = tuple(dict.fromkeys(inputs.project(p) for p in projects))  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    except HebbianMemoryError as e:
        raise ConfigError(f"{where} ({name}): {e}") from e
    hex_digest = digest(token) if isinstance(token, str) else str(hexed).lower()
    return TokenEntry(Grant(name, names), bytes.fromhex(hex_digest))


class TokenFile:
    """A tokens file, read again when it changes; ``load`` (at start) raises on a bad file, later reads do not."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []

    def load(self) -> None:
        """Read the file now; ConfigError if it is missing or malformed (the server must not start on it)."""
        try:
            stamp, text = self._read()
        except OSError as e:
            raise ConfigError(f"Cannot read http.tokens_file {self._path}: {e.strerror}") from e
        self._entries = parse_tokens(text, str(self._path))
        self._stamp = stamp

    def _read(self) -> tuple[tuple[int, int, int], str]:
        with self._path.open("rb") as f:
            st = os.fstat(f.fileno())
            return (st.st_mtime_ns, st.st_size, st.st_ino), f.read().decode()

    def _fresh(self) -> list[TokenEntry]:
        try:
            st = os.stat(self._path)
        except OSError:
            if self._entries:
                log.error("http.tokens_file %s is gone: every token is refused until it is back", self._path)
            self._entries, self._stamp = [], None
            return []
        if (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
            try:
                stamp, text = self._read()
                self._entries, self._stamp = parse_tokens(text, str(self._path)), stamp
                log.info("http.tokens_file read again: %d tokens", len(self._entries))
            except (OSError, UnicodeDecodeError, ConfigError) as e:
                # Keep what was in force: a half-saved edit must neither lock everyone out nor let anyone in.
                log.error("http.tokens_file changed but cannot be used (%s); the tokens before it stay in force", e)
                self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)  # logged once per edit, not per request
        return self._entries

    def grant(self, token: bytes) -> Grant | None:
        """The grant of a presented token, or None; compares digests in constant time against every entry."""
        given = hashlib.sha256(token).digest()
        found: Grant | None = None
        for entry in self._fresh():
            if hmac.compare_digest(given, entry.sha256):
                found = entry.grant
        return found


class TokenAuth:
    """Admits an HTTP request whose ``Authorization: Bearer <token>`` is in the tokens file (401 otherwise) and
    puts its grant into the request's ASGI scope for the tools."""

    def __init__(self, app: "ASGIApp", tokens: TokenFile) -> None:
        self._app = app
        self._tokens = tokens

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            grant = self._tokens.grant(token.strip()) if scheme.lower() == b"bearer" and token.strip() else None
            if grant is None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b"A valid bearer token is required."})
                return
            scope = {**scope, "state": {**scope.get("state", {}), GRANT_KEY: grant}}
        await self._app(scope, receive, send)


def grant_of(request: object) -> Grant | None:
    """The grant ``TokenAuth`` gave the request a tool call came with (None: no team tokens, or not HTTP)."""
    scope: Any = getattr(request, "scope", None)
    state: object = cast("dict[str, object]", scope).get("state") if isinstance(scope, dict) else None
    grant = cast("dict[str, object]", state).get(GRANT_KEY) if isinstance(state, dict) else None
    return grant if isinstance(grant, Grant) else None
