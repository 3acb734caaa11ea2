"""examples/: every client config is valid JSON or TOML and launches the server as written (through uvx when it
is installed, as in CI; else the same arguments through this interpreter), and the scripted session runs."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import call, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
CONFIGS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".toml"))
TOKEN = "example-token-0123456789abcdef"


def servers(path: Path) -> dict[str, dict[str, Any]]:
    """The server entries of a config file, whichever key its client uses."""
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text())["mcp_servers"]
    data = json.loads(path.read_text())
    return data.get("mcpServers") or data["servers"]


def test_every_config_is_valid_and_names_the_server() -> None:
    assert {p.name for p in CONFIGS} >= {
        "claude_desktop_config.json",
        "claude_code.mcp.json",
        "cursor.mcp.json",
        "vscode.mcp.json",
        "http_client.json",
        "codex_config.toml",
    }
    for path in CONFIGS:
        for entry in servers(path).values():
            if "url" in entry:
                assert entry["url"].endswith("/mcp")
            else:
                assert entry["command"] == "uvx"
                assert entry["args"][entry["args"].index("--from") + 2] == "hebbian-memory"


def launch(entry: dict[str, Any], home: Path) -> StdioServerParameters:
    """The entry's command with the placeholders filled: the checkout, a private data dir."""
    args = [
        a.replace("/path/to/hebbian-memory", str(ROOT)).replace("/path/to/my/memory", str(home / "mem"))
        for a in entry["args"]
    ]
    env = {**os.environ, **entry.get("env", {}), "XDG_DATA_HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("HEBBIAN_MEMORY_") or k in entry.get("env", {})}
    if shutil.which("uvx"):
        return StdioServerParameters(command="uvx", args=args, env=env)
    after = args[args.index("hebbian-memory") + 1 :]
    return StdioServerParameters(command=sys.executable, args=["-m", "hebbian_memory", *after], env=env)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name != "http_client.json"], ids=lambda p: p.name)
async def test_each_stdio_config_launches_the_server(path: Path, tmp_path: Path) -> None:
    (entry,) = servers(path).values()
    async with Client(launch(entry, tmp_path), read_timeout_seconds=300) as client:
        stored = await call(client, "remember", content=f"Launched from {path.name}.")
        assert (await call(client, "recall", query="launched from"))["hits"][0]["id"] == stored["id"]
    data_dirs = [p.parent for p in tmp_path.rglob("memory.duckdb")]
    assert len(data_dirs) == 1, "the memory went to the data dir the config names (or the default one)"


async def test_the_http_config_reaches_a_server_started_with_a_token(tmp_path: Path) -> None:
    (entry,) = servers(EXAMPLES / "http_client.json").values()
    port = free_port()
    env = {**os.environ, "HEBBIAN_MEMORY_HTTP_TOKEN": TOKEN}
    command = [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path), "serve"]
    process = subprocess.Popen(
        [*command, "--transport", "streamable-http", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        url = entry["url"].replace("8765", str(port))
        headers = {k: v.replace("${HEBBIAN_MEMORY_HTTP_TOKEN}", TOKEN) for k, v in entry["headers"].items()}
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.2)  # real time: polling a real server process until it listens
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            assert (await call(client, "stats"))["memories"] == 0
    finally:
        process.terminate()
        process.wait(timeout=60)


async def test_the_scripted_session_shows_the_tools_and_learning(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("example_session", EXAMPLES / "session.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outcome: dict[str, Any] = await module.main(str(tmp_path))
    hits = outcome["hits"]
    assert hits[0]["id"] == outcome["flight"]
    hotel = next(h for h in hits if h["id"] == outcome["hotel"])
    assert hotel["via"] is not None, "the hotel came along a learned link"
    assert hotel["reason"] == "linked", "its own match is weak: the link, not the query, brought it"
    assert outcome["stats"]["memories"] == 3
    assert outcome["stats"]["links_by_kind"].keys() >= {"explicit"}


def test_the_scripted_session_run_without_the_sdk_says_how_to_run_it(tmp_path: Path) -> None:
    # -I -S: no site-packages, as a bare system Python without the SDK installed.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(EXAMPLES / "session.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "uv run python examples/session.py" in done.stderr
    assert "Traceback" not in done.stderr
