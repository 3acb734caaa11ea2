"""The early stdio handshake: answer a client's opening request before the MCP SDK has loaded.

Importing the SDK takes about a second (its pydantic models are built at import), longer on slow machines, and
clients show a server as starting until their opening request is answered: ``initialize`` (handshake era) or
``server/discover`` (2026 era). So ``serve`` over stdio claims the pipe first, loads the SDK in a thread and
answers a well-formed opening request from here (it needs only the constants below). The SDK then sees the
whole conversation, the opening line included (it decides the connection's era), and its own answer to that
line is dropped: the client gets one answer, and the SDK's state is the one it would have built.

The answer must equal the SDK's. ``initialize`` picks the protocol version the same way (the client's if it is
one of ``HANDSHAKE_VERSIONS``, else the newest), and the replayed line carries the version we chose, so both
agree; ``server/discover`` is answered only at a version we serve (else the SDK answers with its error).
Our capabilities and identity are constants compared with the SDK's answer by a test, and at run time: the
dropped answer is checked and a difference logged. This module must not import ``mcp`` (that is the point).

The wire also answers what the SDK's stdio reader cannot read: it drops a line that fails to parse (bad JSON, an
unpaired surrogate escape, nesting deeper than its parser allows) or is no JSON-RPC message, unanswered, and the
client waits for its time-out. Every line is checked the SDK's way (``LineCheck``, given by ``app``) and one it
would drop that names a request id gets a JSON-RPC error with that id instead.
"""

import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO, cast

from hebbian_memory import __version__

__all__ = [
    "CAPABILITIES",
    "HANDSHAKE_VERSIONS",
    "INSTRUCTIONS",
    "INVALID_REQUEST",
    "MODERN_CAPABILITIES",
    "MODERN_VERSIONS",
    "PARSE_ERROR",
    "SERVER_NAME",
    "SERVER_TITLE",
    "LineCheck",
    "Opening",
    "StdioWire",
    "discover_result",
    "initialize_result",
    "negotiate",
]

log = logging.getLogger(__name__)

SERVER_NAME = "hebbian-memory"
SERVER_TITLE = "Hebbian Memory"
INSTRUCTIONS = """\
hebbian-memory is your long-term memory across conversations. Use `recall` at the start of a task and whenever
the user refers to something from before; use `remember` for facts, preferences, decisions and events worth
keeping (one self-contained fact per memory, with tags). After you relied on recalled memories, name their ids in
`used` on your next `recall` or `remember`, and any that were wrong or beside the point in `misled`: that is how
recall learns what helps. Use `associate` to link memories that belong together, and `forget` when the user asks
you to delete something."""

# The SDK's protocol versions, oldest to newest (mcp_types.version): the handshake era opens with initialize,
# the 2026 era (every request carries its envelope in _meta) with server/discover.
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
_META = "io.modelcontextprotocol"
# What the SDK announces for a server with tools, resources and prompts, in each era.
CAPABILITIES: Mapping[str, Any] = {
    "prompts": {"listChanged": False},
    "resources": {"listChanged": False, "subscribe": False},
    "tools": {"listChanged": False},
}
MODERN_CAPABILITIES: Mapping[str, Any] = {
    "prompts": {"listChanged": True},
    "resources": {"listChanged": True, "subscribe": True},
    "tools": {"listChanged": True},
}


# JSON-RPC's codes for a line that is not JSON, and for JSON that is no request.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_REFUSALS = {
    PARSE_ERROR: "Parse error: the line is not valid JSON (or holds an unpaired surrogate escape, or nests too deep). "
    "Send each JSON-RPC message as one line of valid UTF-8 JSON.",
    INVALID_REQUEST: "Invalid request: the line is JSON but not a JSON-RPC 2.0 message the server understands. "
    "Send an object with jsonrpc '2.0', a string method, an id and object params.",
}
LineCheck = Callable[[str], int | None]  # the error the SDK's reader would drop a line with, or None: it reads it


def initialize_result(protocol_version: str) -> dict[str, Any]:
    """Our answer to ``initialize`` at a negotiated protocol version."""
    return {
        "capabilities": CAPABILITIES,
        "instructions": INSTRUCTIONS,
        "protocolVersion": protocol_version,
        "serverInfo": _server_info(),
    }


def discover_result() -> dict[str, Any]:
    """Our answer to ``server/discover`` (2026 era): the same facts, stamped with our identity in ``_meta``."""
    return {
        "cacheScope": "private",
        "capabilities": MODERN_CAPABILITIES,
        "instructions": INSTRUCTIONS,
        "resultType": "complete",
        "supportedVersions": list(MODERN_VERSIONS),
        "ttlMs": 0,
        "_meta": {f"{_META}/serverInfo": _server_info()},
    }


def _server_info() -> dict[str, str]:
    return {"name": SERVER_NAME, "title": SERVER_TITLE, "version": __version__}


def negotiate(requested: str) -> str:
    return requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]


@dataclass(frozen=True, slots=True)
class Opening:
    """The client's first line, as the SDK should read it, and the id we already answered (None: not answered)."""

    line: str
    answered_id: str | int | None = None
    answer: Mapping[str, Any] | None = None


class StdioWire:
    """The MCP pipe, claimed from fd 0 and 1 for the life of the process.

    As the SDK does when it claims them itself: the wire moves to private descriptors and fd 0 reads the null
    device, fd 1 writes to stderr, so a stray print (ours, a library's, a native one) never corrupts a frame.
    """

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._text_out = io.TextIOWrapper(writer, encoding="utf-8", write_through=True)
        self._writing = threading.Lock()  # the SDK writes from one worker thread, refusals come from its reader's

    @classmethod
    def claim(cls) -> "StdioWire":
        import fcntl  # POSIX only; the caller checks supported() first

        sys.stdout.flush()
        wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        # closefd=False: an SDK worker thread may still block on a read at exit; the fd must not be recycled.
        return cls(os.fdopen(wire_in, "rb", closefd=False), os.fdopen(wire_out, "wb", buffering=0, closefd=False))

    @staticmethod
    def supported() -> bool:
        return sys.platform != "win32"

    def open(self) -> Opening:
        """Read the client's first line; if it is a well-formed opening request, answer it now."""
        line = self._reader.readline().decode("utf-8", errors="replace")
        request = _request(line)
        if request is None:
            return Opening(line)
        params = cast(dict[str, Any], request["params"])
        if request["method"] == "initialize" and _valid_initialize(params):
            version = negotiate(cast(str, params["protocolVersion"]))
            answer = initialize_result(version)
            # The SDK negotiates from the version we chose, so its session agrees with what the client was told.
            replayed = json.dumps({**request, "params": {**params, "protocolVersion": version}}, ensure_ascii=False)
            line = replayed + "\n"
        elif request["method"] == "server/discover" and _valid_envelope(params):
            version = MODERN_VERSIONS[-1]
            answer = discover_result()
        else:
            return Opening(line)
        frame = {"jsonrpc": "2.0", "id": request["id"], "result": answer}
        self.write(json.dumps(frame, ensure_ascii=False, separators=(",", ":")) + "\n")
        log.info("answered %s (protocol %s) while the MCP SDK loads", request["method"], version)
        return Opening(line, request["id"], answer)

    def write(self, text: str) -> None:
        with self._writing:
            self._text_out.write(text)
            self._text_out.flush()

    def refuse(self, line: str, check: LineCheck) -> bool:
        """Answer ``line`` with a JSON-RPC error if the SDK cannot read it and it names a request id; True if so."""
        code = check(line)
        request_id = None if code is None else _request_id(line)
        if code is None or request_id is None:
            return False  # read by the SDK; or nothing to answer (no id, or a response), which it logs and drops
        frame = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": _REFUSALS[code]}}
        self.write(json.dumps(frame, separators=(",", ":")) + "\n")  # ASCII: an id may hold a lone surrogate
        log.warning("answered a line the MCP SDK cannot read (request id %r) with JSON-RPC error %d", request_id, code)
        return True

    def sdk_streams(self, opening: Opening, check: LineCheck) -> tuple[TextIO, TextIO]:
        """Text streams for the SDK's stdio transport: the opening line then the wire, minus the lines ``check``
        says it cannot read (answered here); the wire minus our answer.

        The SDK (through anyio) only calls readline, write and flush; typing.TextIO is what anyio's types ask."""
        reader = _Replay(opening.line, self._reader, lambda line: self.refuse(line, check))
        return cast(TextIO, reader), cast(TextIO, _AnswerFilter(self, opening))


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nesting deeper than Python's recursion limit
        return None
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


# A JSON string (to its end, if unterminated) or a run of opening or closing brackets; possessive, so a scan
# never backtracks.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"?|[{\[]++|[}\]]++', re.DOTALL)
_KEY_END = re.compile(r"\s*:")
_ID_VALUE = re.compile(r'\s*:\s*("(?:[^"\\]|\\.)*+"|-?[0-9]+)\s*(?:[,}]|$)', re.DOTALL)  # $: a line cut short


def _request_id(line: str) -> str | int | None:
    """The top-level ``id`` of a line that may not parse (too deep, bad escapes, cut short), found by a scan of
    its strings and brackets; None without one, or for a response (answering it would confuse the client)."""
    if not line.lstrip().startswith("{"):
        return None
    depth, keys, found = 0, set[str](), None
    for m in _TOKEN.finditer(line):
        token = m.group()
        if token[0] in "{[":
            depth += len(token)
        elif token[0] in "}]":
            depth -= len(token)
        elif depth == 1 and _KEY_END.match(line, m.end()):
            keys.add(token)
            value = _ID_VALUE.match(line, m.end()) if token == '"id"' and found is None else None
            if value is not None:
                try:
                    found = json.loads(value.group(1))
                except ValueError:  # a bad escape in the id itself: nothing to answer with
                    return None
    if '"method"' not in keys and ('"result"' in keys or '"error"' in keys):
        return None
    return cast(str | int | None, found)


def _request(line: str) -> dict[str, Any] | None:
    """``line`` as a JSON-RPC request with an id and object params; else None."""
    request = _json_object(line)
    if request is None:
        return None
    request_id = request.get("id")
    try:  # Python reads an unpaired surrogate escape, the SDK does not: such a line is not answered early
        json.dumps(request, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None
    ok = (
        request.get("jsonrpc") == "2.0"
        and isinstance(request.get("method"), str)
        and isinstance(request_id, str | int)
        and not isinstance(request_id, bool)
        and isinstance(request.get("params"), dict)
    )
    return request if ok else None


def _is_implementation(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    fields = cast(dict[str, Any], value)
    return isinstance(fields.get("name"), str) and isinstance(fields.get("version"), str)


def _valid_initialize(params: Mapping[str, Any]) -> bool:
    """An ``initialize`` the SDK accepts (anything else is left for the SDK to answer, or refuse)."""
    return (
        isinstance(params.get("protocolVersion"), str)
        and isinstance(params.get("capabilities"), dict)
        and _is_implementation(params.get("clientInfo"))
    )


def _valid_envelope(params: Mapping[str, Any]) -> bool:
    """A 2026-era request envelope at a version we serve (the SDK refuses others, and we let it)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return False
    meta = cast(dict[str, Any], meta)
    client = meta.get(f"{_META}/clientInfo")
    return (
        meta.get(f"{_META}/protocolVersion") in MODERN_VERSIONS
        and isinstance(meta.get(f"{_META}/clientCapabilities"), dict)
        and (client is None or _is_implementation(client))
    )


class _Replay(io.TextIOBase):
    """Reads the opening line, then the wire, skipping the lines ``refused`` answers (the SDK reads with readline,
    from worker threads)."""

    def __init__(self, first: str, reader: BinaryIO, refused: Callable[[str], bool]) -> None:
        self._first: str | None = first
        self._rest = io.TextIOWrapper(reader, encoding="utf-8", errors="replace")
        self._refused = refused

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:
        while True:
            if self._first is not None:
                line, self._first = self._first, None
            else:
                line = self._rest.readline()
            if not line or not self._refused(line):
                return line

    def close(self) -> None:  # the wire is not the SDK's to close
        pass


class _AnswerFilter(io.TextIOBase):
    """Passes the SDK's frames to the wire, except its answer to the ``initialize`` we answered already."""

    def __init__(self, wire: StdioWire, opening: Opening) -> None:
        self._wire = wire
        self._pending = opening.answered_id
        self._answer = opening.answer

    def writable(self) -> bool:
        return True

    def write(self, s: str, /) -> int:
        if self._pending is not None and self._is_pending_answer(s):
            self._pending = None
            return len(s)
        self._wire.write(s)
        return len(s)

    def _is_pending_answer(self, frame: str) -> bool:
        message = _json_object(frame)
        if message is None:
            return False
        if message.get("id") != self._pending or not ("result" in message or "error" in message):
            return False
        if message.get("result") != self._answer:
            log.error(
                "The MCP SDK answered the opening request differently from the early answer; set early_initialize = "
                "false and report this. SDK: %s; early: %s",
                message.get("result", message.get("error")),
                self._answer,
            )
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
