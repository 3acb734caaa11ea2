"""examples/: every client config is valid JSON or TOML; each stdio one launches the server as written, installed
the way the README says (`uv tool install`) and without a network; each HTTP one reaches a server with a token;
and the scripted session runs."""

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

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
CONFIGS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".toml"))
TOKEN = "example-token-0123456789abcdef"
TIMEOUT_S = 120  # the first call waits for the model to load: seconds on a busy machine, not httpx's default 5
INSTALLED = "/home/you/.local/bin/hebbian-memory"  # the placeholder for `uv tool install`'s command
# Each client's way to put the token in a header: Claude Code ${VAR}, Cursor ${env:VAR}, VS Code a prompted input.
HTTP_TOKENS = {
    "claude_code.http.mcp.json": "${HEBBIAN_MEMORY_HTTP_TOKEN}",
    "cursor.http.mcp.json": "${env:HEBBIAN_MEMORY_HTTP_TOKEN}",
    "vscode.http.mcp.json": "${input:hebbian-memory-token}",
}


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
        "codex_config.toml",
        *HTTP_TOKENS,
    }
    for path in CONFIGS:
        for entry in servers(path).values():
            if path.name in HTTP_TOKENS:
                assert entry["url"].endswith("/mcp")
                assert entry["headers"]["Authorization"] == f"Bearer {HTTP_TOKENS[path.name]}", "the client's syntax"
            else:
                # The installed command by its absolute path: GUI clients do not read the shell's PATH.
                assert entry["command"] == INSTALLED


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command the configs name, installed the way the README says (`uv tool install`, into a private tool
    dir), run without a network where this machine can take it away (`unshare -n`); without uv, this
    environment's console script."""
    uv = shutil.which("uv")
    if uv is None:
        return [str(Path(sys.executable).with_name("hebbian-memory"))]
    base = tmp_path_factory.mktemp("uv-tool")
    env = {**os.environ, "UV_TOOL_DIR": str(base / "tools"), "UV_TOOL_BIN_DIR": str(base / "bin")}
    subprocess.run([uv, "tool", "install", "--from", str(ROOT), "hebbian-memory"], env=env, check=True)
    offline = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0
    return [*(["unshare", "-n"] if offline else []), str(base / "bin" / "hebbian-memory")]


def launch(entry: dict[str, Any], home: Path, command: list[str]) -> StdioServerParameters:
    """The entry's command with the placeholders filled: the installed server, a private data dir."""
    assert entry["command"] == INSTALLED
    args = [a.replace("/path/to/my/memory", str(home / "mem")) for a in entry.get("args", [])]
    env = {**os.environ, **entry.get("env", {}), "XDG_DATA_HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("HEBBIAN_MEMORY_") or k in entry.get("env", {})}
    return StdioServerParameters(command=command[0], args=[*command[1:], *args], env=env)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name not in HTTP_TOKENS], ids=lambda p: p.name)
async def test_each_stdio_config_launches_the_installed_server_offline(
    path: Path, tmp_path: Path, installed: list[str]
) -> None:
    (entry,) = servers(path).values()
    async with Client(launch(entry, tmp_path, installed), read_timeout_seconds=300) as client:
        stored = await call(client, "remember", content=f"Launched from {path.name}.")
        assert (await call(client, "recall", query="launched from"))["hits"][0]["id"] == stored["id"]
    data_dirs = [p.parent for p in tmp_path.rglob("memory.duckdb")]
    assert len(data_dirs) == 1, "the memory went to the data dir the config names (or the default one)"


@pytest.mark.parametrize("name", sorted(HTTP_TOKENS))
async def test_each_http_config_reaches_a_server_started_with_a_token(name: str, tmp_path: Path) -> None:
    (entry,) = servers(EXAMPLES / name).values()
    port = free_port()
    env = {**os.environ, "HEBBIAN_MEMORY_HTTP_TOKEN": TOKEN}
    command = [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path), "serve"]
    process = subprocess.Popen(
        [*command, "--transport", "streamable-http", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        url = entry["url"].replace("8765", str(port))
        headers = {k: v.replace(HTTP_TOKENS[name], TOKEN) for k, v in entry["headers"].items()}
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.2)  # real time: polling a real server process until it listens
        async with (
            httpx2.AsyncClient(headers=headers, timeout=TIMEOUT_S) as http,
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
