"""The early stdio handshake: the real server answers initialize before the SDK has loaded, exactly as the SDK
would, and the session then carries on through the SDK with one answer per request."""

import json
import logging
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mcp.server.lowlevel.server
import mcp_types.version
import pytest

from hebbian_memory.transport.handshake import (
    HANDSHAKE_VERSIONS,
    MODERN_VERSIONS,
    Opening,
    StdioWire,
    discover_result,
    initialize_result,
)
from tests.helpers import base_env

TIMEOUT = 60.0


def envelope(version: str = "2026-07-28") -> dict[str, Any]:
    return {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }


def discover(version: str = "2026-07-28", request_id: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "server/discover", "params": envelope(version)}


def initialize(version: str, request_id: int | str = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }


class RawServer:
    """The real server as a subprocess, spoken to in raw JSON lines so every frame it sends is seen."""

    def __init__(self, data_dir: Path, early: bool, env: dict[str, str] | None = None) -> None:
        env = {
            **base_env(data_dir),
            "HEBBIAN_MEMORY_EARLY_INITIALIZE": "true" if early else "false",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hebbian_memory", "--data-dir", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._pending = b""

    def send(self, *messages: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        for m in messages:
            self.proc.stdin.write((m if isinstance(m, str) else json.dumps(m)).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next frame (read from the descriptor, so a second frame in the same chunk is kept for later)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._pending:
            if not self._selector.select(timeout=max(0.0, deadline - time.monotonic())):
                raise TimeoutError("the server sent nothing")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            assert chunk, "the server closed stdout"
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def until(self, request_id: int | str) -> list[dict[str, Any]]:
        """Every frame up to and including the answer to ``request_id``."""
        frames = [self.receive()]
        while frames[-1].get("id") != request_id or "method" in frames[-1]:
            frames.append(self.receive())
        return frames

    def close(self) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT)
        self._selector.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        with self.proc.stderr:
            return self.proc.stderr.read().decode()


def session(data_dir: Path, version: str, early: bool) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """initialize at ``version``, then initialized and tools/list: (initialize answer, later frames, stderr)."""
    server = RawServer(data_dir, early)
    try:
        server.send(initialize(version))
        answer = server.receive()
        server.send(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        )
        later = server.until(2)
    finally:
        stderr = server.close()
    return answer, later, stderr


def test_our_protocol_versions_are_the_sdks() -> None:
    assert HANDSHAKE_VERSIONS == mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS
    assert MODERN_VERSIONS == mcp_types.version.MODERN_PROTOCOL_VERSIONS


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01"])
def test_the_early_answer_is_the_one_the_sdk_gives_and_the_session_goes_on(tmp_path: Path, version: str) -> None:
    answer, later, stderr = session(tmp_path / "data", version, early=True)
    expected = version if version in mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS else "2025-11-25"
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": initialize_result(expected)}
    # The SDK answered the replayed initialize too; that answer was checked against ours and dropped.
    assert [f for f in later if f.get("id") == 1] == []
    assert "answered the opening request differently" not in stderr, stderr
    assert f"answered initialize (protocol {expected}) while the MCP SDK loads" in stderr
    tools = {t["name"] for t in later[-1]["result"]["tools"]}
    assert {"remember", "recall", "associate", "forget"} <= tools


@pytest.mark.parametrize("version", ["2025-06-18", "1999-01-01"])
def test_with_early_initialize_off_the_sdk_answers_the_same(tmp_path: Path, version: str) -> None:
    sdk_answer, _, sdk_log = session(tmp_path / "sdk", version, early=False)
    early_answer, _, early_log = session(tmp_path / "early", version, early=True)
    assert early_answer == sdk_answer
    assert "while the MCP SDK loads" in early_log
    assert "while the MCP SDK loads" not in sdk_log


def test_a_2026_client_gets_the_sdks_discover_answer_early_and_then_its_tools(tmp_path: Path) -> None:
    """The SDK's own client opens with server/discover (mode "auto"), so the early answer covers it too."""
    answers: dict[bool, dict[str, Any]] = {}
    for early in (False, True):
        server = RawServer(tmp_path / str(early), early)
        try:
            server.send(discover())
            answers[early] = server.receive()
            server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": envelope()})
            later = server.until(2)
        finally:
            stderr = server.close()
        assert [f for f in later if f.get("id") == 1] == []
        assert {"remember", "recall"} <= {t["name"] for t in later[-1]["result"]["tools"]}
        assert ("answered server/discover (protocol 2026-07-28) while the MCP SDK loads" in stderr) is early
        assert "differently" not in stderr, stderr
    assert answers[True] == answers[False] == {"jsonrpc": "2.0", "id": 1, "result": discover_result()}


@pytest.mark.parametrize(
    "first",
    [
        json.dumps(discover("2099-01-01", "p")),
        json.dumps({"jsonrpc": "2.0", "id": "p", "method": "ping"}),
        json.dumps({**initialize("2025-06-18", "p"), "params": {"protocolVersion": "2025-06-18"}}),
        "this is not json",
    ],
    ids=["discover at an unknown version", "ping", "initialize without clientInfo", "garbage"],
)
def test_a_first_line_that_is_no_wellformed_opening_request_is_left_to_the_sdk(tmp_path: Path, first: str) -> None:
    sdk = RawServer(tmp_path / "sdk", early=False)
    early = RawServer(tmp_path / "early", early=True)
    try:
        for server in (sdk, early):
            server.send(first, initialize("2025-06-18", 9))
        sdk_frames, early_frames = sdk.until(9), early.until(9)
    finally:
        sdk.close()
        early.close()
    assert early_frames == sdk_frames
    assert "p" in {f.get("id") for f in early_frames} or first == "this is not json"  # the SDK answered it


def test_a_differing_sdk_answer_is_logged_and_still_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """The run-time check can fail: the filter compares the SDK's answer with ours."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb", buffering=0) as writer:
        wire = StdioWire(reader, writer)
        opening = Opening("{}\n", 7, initialize_result("2025-06-18"))
        _, out = wire.sdk_streams(opening, lambda line: None)
        other = {**initialize_result("2025-06-18"), "instructions": "something else"}
        with caplog.at_level(logging.ERROR, logger="hebbian_memory.transport.handshake"):
            out.write(json.dumps({"jsonrpc": "2.0", "id": 7, "result": other}) + "\n")
            out.write(json.dumps({"jsonrpc": "2.0", "id": 8, "result": {}}) + "\n")
        writer.close()
        passed = reader.read().decode()
    assert "answered the opening request differently" in caplog.text
    assert passed == json.dumps({"jsonrpc": "2.0", "id": 8, "result": {}}) + "\n"


def test_where_python_may_not_write_bytecode_beside_the_sources_the_server_keeps_it_in_its_cache(
    tmp_path: Path,
) -> None:
    """uvx sets PYTHONDONTWRITEBYTECODE; without a cache every launch would compile the SDK from source again."""
    cache = tmp_path / "cache"
    server = RawServer(tmp_path / "data", True, {"PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache)})
    try:
        server.send(initialize("2025-06-18"))
        server.receive()
        server.send(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        )
        server.until(2)
    finally:
        server.close()
    source = Path(mcp.server.lowlevel.server.__file__).resolve()
    mirrored = cache / "hebbian-memory" / "bytecode" / source.parent.relative_to(source.anchor)
    assert (mirrored / f"{source.stem}.{sys.implementation.cache_tag}.pyc").is_file()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_every_request_the_sdk_cannot_read_gets_an_error_with_its_id_and_the_server_goes_on(tmp_path: Path) -> None:
    """The SDK's stdio reader dropped these unanswered (clients waited for their time-out); a first line nested
    10,000 deep crashed the early handshake's reader."""
    server = RawServer(tmp_path / "data", early=True)
    deep_opening = json.dumps(initialize("2025-06-18", "deep-first"))[:-2] + f', "x": {nested(10_000)}}}}}'
    bad = {
        "surrogate": (
            '{"jsonrpc":"2.0","id":"surrogate","method":"tools/call",'
            '"params":{"name":"remember","arguments":{"content":"a\\ud800b"}}}',
            -32700,
        ),
        7: ('{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"a":' + nested(10_000) + "}}", -32700),
        8: ('{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"a":' + nested(300) + "}}", -32700),
        9: ('{"jsonrpc":"2.0","id":9,"method":"ping"', -32700),
        12: ('{"jsonrpc":"2.0","method":"ping","id":12', -32700),
        10: ('{"jsonrpc":"2.0","id":10,"method":5}', -32600),
        'a"b': ('{"params":{"id":3,"a":' + nested(5_000) + '},"id":"a\\"b","jsonrpc":"2.0","method":"x"}', -32700),
    }
    response = '{"jsonrpc":"2.0","id":11,"result":' + nested(10_000) + "}"  # a client's answer: never answered
    try:
        server.send(deep_opening)
        first = server.receive()
        assert (first["id"], first["error"]["code"]) == ("deep-first", -32700)
        assert "Send each JSON-RPC message as one line" in first["error"]["message"], "it says what to do"
        server.send(initialize("2025-06-18", 1))
        assert server.receive()["result"]["serverInfo"]["name"] == "hebbian-memory"
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send(*(line for line, _ in bad.values()), response, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        frames = server.until(2)
    finally:
        stderr = server.close()
    errors = {f["id"]: f["error"]["code"] for f in frames if "error" in f}
    assert errors == {request_id: code for request_id, (_, code) in bad.items()}
    assert {"remember", "recall"} <= {t["name"] for t in frames[-1]["result"]["tools"]}, "the server goes on"
    assert "Traceback" not in stderr, stderr
