"""The early stdio handshake: answer MCP's ``initialize`` before the MCP SDK has loaded.

Importing the SDK takes about a second (its pydantic models are built at import), longer on slow machines, and
clients show a server as starting until ``initialize`` is answered. So ``serve`` over stdio claims the pipe
first, loads the SDK in a thread and answers a legacy ``initialize`` from here (it needs only the constants
below). The SDK then sees the whole conversation, the ``initialize`` line included, and its own answer to that
line is dropped: the client gets one answer, and the SDK's session state is the one it would have built.

The answer must equal the SDK's. It picks the protocol version the same way (the client's if it is one of
``HANDSHAKE_VERSIONS``, else the newest), and the replayed line carries the version we chose, so both agree.
Our capabilities and identity are constants compared with the SDK's answer by a test, and at run time: the
dropped answer is checked and a difference logged. This module must not import ``mcp`` (that is the point).
"""

import io
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO, cast

from hebbian_memory import __version__

log = logging.getLogger(__name__)

SERVER_NAME = "hebbian-memory"
SERVER_TITLE = "Hebbian Memory"
INSTRUCTIONS = """\
hebbian-memory is your long-term memory across conversations. Use `recall` at the start of a task and whenever
the user refers to something from before; use `remember` for facts, preferences, decisions and events worth
keeping (one self-contained fact per memory, with tags). Use `associate` to link memories that belong together,
and `forget` when the user asks you to delete something."""

# The SDK's handshake-era protocol versions, oldest to newest (mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS).
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# What the SDK announces for a server with tools, resources and prompts (none of them change at run time).
CAPABILITIES: Mapping[str, Any] = {
    "prompts": {"listChanged": False},
    "resources": {"listChanged": False, "subscribe": False},
    "tools": {"listChanged": False},
}


def initialize_result(protocol_version: str) -> dict[str, Any]:
    """Our answer to ``initialize`` at a negotiated protocol version."""
    return {
        "capabilities": CAPABILITIES,
        "instructions": INSTRUCTIONS,
        "protocolVersion": protocol_version,
        "serverInfo": {"name": SERVER_NAME, "title": SERVER_TITLE, "version": __version__},
    }


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
        """Read the client's first line; if it is a well-formed ``initialize``, answer it now."""
        raw = self._reader.readline()
        line = raw.decode("utf-8", errors="replace")
        request = _as_initialize(line)
        if request is None:
            return Opening(line)
        params = cast(dict[str, Any], request["params"])
        version = negotiate(cast(str, params["protocolVersion"]))
        answer = initialize_result(version)
        self.write(
            json.dumps(
                {"jsonrpc": "2.0", "id": request["id"], "result": answer}, ensure_ascii=False, separators=(",", ":")
            )
            + "\n"
        )
        log.info("answered initialize (protocol %s) while the MCP SDK loads", version)
        replayed = {**request, "params": {**params, "protocolVersion": version}}
        return Opening(json.dumps(replayed, ensure_ascii=False) + "\n", request["id"], answer)

    def write(self, text: str) -> None:
        self._text_out.write(text)
        self._text_out.flush()

    def sdk_streams(self, opening: Opening) -> tuple[TextIO, TextIO]:
        """Text streams for the SDK's stdio transport: the opening line then the wire; the wire minus our answer.

        The SDK (through anyio) only calls readline, write and flush; typing.TextIO is what anyio's types ask."""
        return cast(TextIO, _Replay(opening.line, self._reader)), cast(TextIO, _AnswerFilter(self, opening))


def _as_initialize(line: str) -> dict[str, Any] | None:
    """The request if ``line`` is an ``initialize`` the SDK would accept; else None (the SDK answers it)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    request = cast(dict[str, Any], message)
    params = request.get("params")
    ok = (
        request.get("jsonrpc") == "2.0"
        and request.get("method") == "initialize"
        and isinstance(request.get("id"), str | int)
        and not isinstance(request.get("id"), bool)
        and isinstance(params, dict)
    )
    if not ok:
        return None
    params = cast(dict[str, Any], params)
    client = params.get("clientInfo")
    if not (
        isinstance(params.get("protocolVersion"), str)
        and isinstance(params.get("capabilities"), dict)
        and isinstance(client, dict)
        and isinstance(cast(dict[str, Any], client).get("name"), str)
        and isinstance(cast(dict[str, Any], client).get("version"), str)
    ):
        return None
    return request


class _Replay(io.TextIOBase):
    """Reads the opening line, then the wire (the SDK reads with readline, from worker threads)."""

    def __init__(self, first: str, reader: BinaryIO) -> None:
        self._first: str | None = first
        self._rest = io.TextIOWrapper(reader, encoding="utf-8", errors="replace")

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self._rest.readline()

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
        try:
            message = json.loads(frame)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        message = cast(dict[str, Any], message)
        if message.get("id") != self._pending or not ("result" in message or "error" in message):
            return False
        if message.get("result") != self._answer:
            log.error(
                "The MCP SDK answered initialize differently from the early answer; set early_initialize = "
                "false and report this. SDK: %s; early: %s",
                message.get("result", message.get("error")),
                self._answer,
            )
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
