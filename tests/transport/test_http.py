"""The HTTP transports (SSE, streamable HTTP) through the real mcp client against a real server process:
loopback by default, a bearer token when one is set (and required off loopback), Host/Origin checks on."""

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from hebbian_memory.cli import main
from tests.helpers import base_env, call, free_port

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@contextmanager
def http_server(
    data_dir: Path, transport: str, *args: str, token: str | None = None, settings: dict[str, str] | None = None
) -> Generator[int]:
    """Start ``hebbian-memory serve`` over HTTP and yield its port once it accepts connections."""
    port = free_port()
    env = {**base_env(data_dir), **(settings or {})}
    if token:
        env["HEBBIAN_MEMORY_HTTP_TOKEN"] = token
    command = [sys.executable, "-m", "hebbian_memory", "--data-dir", str(data_dir), "serve"]
    process = subprocess.Popen(
        [*command, "--transport", transport, "--port", str(port), *args], env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.1)  # real time: polling a real server process until it listens
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


async def remember_then_recall(client: Client, content: str, query: str) -> tuple[int, int]:
    """The id stored for ``content`` and the id of the best hit for ``query``."""
    stored = await call(client, "remember", content=content)
    hits = (await call(client, "recall", query=query, k=1))["hits"]
    return stored["id"], hits[0]["id"]


@pytest.mark.anyio
async def test_streamable_http_on_loopback_stores_and_recalls(data_dir: Path) -> None:
    with http_server(data_dir, "streamable-http") as port:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            stored, found = await remember_then_recall(
                client, "The wifi password is on the fridge.", "where is the wifi password"
            )
    assert found == stored


@pytest.mark.anyio
async def test_sse_on_loopback_stores_and_recalls(data_dir: Path) -> None:
    with http_server(data_dir, "sse") as port:
        async with Client(sse_client(f"http://127.0.0.1:{port}/sse")) as client:
            stored, found = await remember_then_recall(
                client, "Grandma's lasagne needs three hours.", "how long does the lasagne take"
            )
    assert found == stored


def test_binding_beyond_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    for transport in ("streamable-http", "sse"):
        result = CliRunner().invoke(
            main, ["--data-dir", str(tmp_path), "serve", "--transport", transport, "--host", "0.0.0.0"], env={}
        )
        assert result.exit_code != 0
        assert "without a token" in result.output
        assert "HEBBIAN_MEMORY_HTTP_TOKEN" in result.output
    assert not (tmp_path / "memory.duckdb").exists()


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "serve", "--transport", "sse"], env={"HEBBIAN_MEMORY_HTTP_TOKEN": "abc"}
    )
    assert result.exit_code != 0
    assert "at least 16 characters" in result.output


@pytest.mark.anyio
async def test_with_a_token_requests_without_it_are_rejected_and_with_it_served(data_dir: Path) -> None:
    with http_server(data_dir, "streamable-http", "--host", "0.0.0.0", token=TOKEN) as port:
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx2.AsyncClient() as http:
            anonymous = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
            wrong = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": "Bearer nope"})
        assert (anonymous.status_code, wrong.status_code) == (401, 401)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        # The first call waits for the model to load: seconds on a busy machine, more than httpx's default 5.
        authorised = httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=120)
        async with authorised, Client(streamable_http_client(url, http_client=authorised)) as client:
            stored, found = await remember_then_recall(client, "The spare key is under the blue pot.", "spare key")
        assert found == stored


@pytest.mark.anyio
async def test_a_forged_host_or_origin_is_rejected_over_streamable_http(data_dir: Path) -> None:
    with http_server(data_dir, "streamable-http") as port:
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx2.AsyncClient() as http:
            honest = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
            forged_host = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "host": f"evil.test:{port}"})
            forged_origin = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "origin": "http://evil.test"})
    assert honest.status_code == 200
    assert forged_host.status_code == 421
    assert forged_origin.status_code == 403


@pytest.mark.anyio
async def test_a_forged_host_or_origin_is_rejected_over_sse(data_dir: Path) -> None:
    with http_server(data_dir, "sse") as port:
        url = f"http://127.0.0.1:{port}/sse"
        # One client per request: the SDK's SSE endpoint drops the connection after refusing a request.
        async with httpx2.AsyncClient() as http:
            forged_host = await http.get(url, headers={"host": f"evil.test:{port}"})
        async with httpx2.AsyncClient() as http:
            forged_origin = await http.get(url, headers={"origin": f"http://evil.test:{port}"})
    assert forged_host.status_code == 421
    assert forged_origin.status_code == 403


MIB = 1 << 20


def post_head(port: int, length: int | None, host: str = "127.0.0.1") -> socket.socket:
    """A connection that has sent a POST's headers (a body of ``length`` bytes, or chunked), and no body yet."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    head = f"POST /mcp HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
    head += f"accept: application/json, text/event-stream\r\n{framing}\r\n\r\n"
    conn.sendall(head.encode())
    return conn


def status(conn: socket.socket) -> int:
    """The status of the answer on ``conn`` (its socket timeout bounds the wait)."""
    answer = b""
    while b"\r\n" not in answer:
        got = conn.recv(4096)
        assert got, "the server closed the connection without an answer"
        answer += got
    return int(answer.split()[1])


def send_some(conn: socket.socket, size: int) -> None:
    """Up to ``size`` bytes of body; the server may answer and stop reading before it has them all."""
    with contextlib.suppress(OSError):  # it answered and closed: what the caller checks next
        conn.sendall(b" " * size)


def test_a_foreign_host_is_refused_before_its_body_is_read(data_dir: Path) -> None:
    with http_server(data_dir, "streamable-http") as port:
        conn = post_head(port, 40 * MIB, host="evil.test")
        with conn:
            send_some(conn, 64 * 1024)  # of 40 MiB announced: the answer comes without the rest
            assert status(conn) == 421


def test_a_body_over_the_limit_gets_413_whether_announced_or_streamed(data_dir: Path) -> None:
    with http_server(data_dir, "streamable-http", settings={"HEBBIAN_MEMORY_HTTP_MAX_REQUEST_MB": "1"}) as port:
        with post_head(port, 2 * MIB) as announced:
            assert status(announced) == 413
        with post_head(port, None) as streamed:
            chunk = b" " * (256 * 1024)
            with contextlib.suppress(OSError):  # refused midway
                for _ in range(8):
                    streamed.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            assert status(streamed) == 413


def test_bodies_beyond_the_bytes_in_flight_get_503_until_the_first_is_done(data_dir: Path) -> None:
    limits = {"HEBBIAN_MEMORY_HTTP_MAX_REQUEST_MB": "1", "HEBBIAN_MEMORY_HTTP_MAX_IN_FLIGHT_MB": "1"}
    with http_server(data_dir, "streamable-http", settings=limits) as port:
        slow = post_head(port, MIB)
        slow.sendall(b" " * (MIB - 1024))  # most of its body, and it holds the rest back
        deadline = time.monotonic() + 60
        while True:  # until the server has taken in the slow body's bytes
            with post_head(port, 512 * 1024) as other:
                send_some(other, 512 * 1024)
                answer = status(other)
            if answer == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # real time: a real server process reading a real socket
        assert answer == 503
        slow.sendall(b" " * 1024)
        assert status(slow) == 400  # not JSON: the SDK had it
        slow.close()
        with post_head(port, 512 * 1024) as later:
            send_some(later, 512 * 1024)
            assert status(later) == 400
