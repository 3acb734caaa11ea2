"""CI: launch the given wheel the way a user's client config does (`uvx --from <wheel> hebbian-memory`, in an
isolated environment, no config, the default data dir under an empty XDG_DATA_HOME) and complete an MCP session
over stdio: the tools are listed, a memory is stored, recalled, counted and forgotten. Then the wheel's
`doctor` must pass every check and its `map` must write a page.

    python .ci/wheel_session.py dist/hebbian_memory-*.whl
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Literal

import anyio
from mcp import Client, StdioServerParameters


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"wheel session: {what}")


async def session(
    wheel: str, home: str, isolated: bool, mode: Literal["auto", "legacy"], offline: bool = False
) -> tuple[float, float]:
    """One MCP session from a uvx launch; seconds from the launch to the opening answer and to the tool list.
    mode "auto" opens as a 2026 client does (server/discover), "legacy" with the initialize handshake. offline:
    `uvx --offline`, with the network taken away where this machine can (`unshare -n`)."""
    # The caller's environment (registry, certificates, uv cache) minus any hebbian-memory settings; the user
    # data dir moved to an empty folder, so the first run starts from nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEBBIAN_MEMORY_")}
    env["XDG_DATA_HOME"] = home
    args = [
        *(["--isolated"] if isolated else []),
        *(["--offline"] if offline else []),
        "--from",
        wheel,
        "hebbian-memory",
    ]
    command = ["unshare", "-n", "uvx"] if offline and can_unshare() else ["uvx"]
    params = StdioServerParameters(command=command[0], args=[*command[1:], *args], env=env)
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=300, mode=mode) as client:
        opened = time.perf_counter() - started
        tools = {t.name for t in (await client.list_tools()).tools}
        listed = time.perf_counter() - started
        check(tools >= {"remember", "recall", "associate", "forget", "stats"}, f"tools listed: {sorted(tools)}")
        stored: dict[str, Any] = (
            await client.call_tool("remember", {"content": "The wheel works offline."})
        ).structured_content or {}
        check(stored.get("created") is True, f"remember answered {stored}")
        found: dict[str, Any] = (
            await client.call_tool("recall", {"query": "does the wheel work?"})
        ).structured_content or {}
        check([h["id"] for h in found.get("hits", [])][:1] == [stored["id"]], f"recall answered {found}")
        stats: dict[str, Any] = (await client.call_tool("stats", {})).structured_content or {}
        check(stats.get("memories") == 1, f"stats answered {stats}")
        gone: dict[str, Any] = (await client.call_tool("forget", {"ids": [stored["id"]]})).structured_content or {}
        check(gone.get("forgotten") == 1, f"forget answered {gone}")
    data_dir = os.path.join(home, "hebbian-memory")
    check(os.path.isfile(os.path.join(data_dir, "memory.duckdb")), f"no database in the default data dir {data_dir}")
    return opened, listed


def can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], check=False, capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def commands(wheel: str, home: str) -> None:
    """The terminal commands from the wheel: doctor passes every check, map writes its page."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEBBIAN_MEMORY_")}
    env["XDG_DATA_HOME"] = home

    def run(*args: str) -> str:
        done = subprocess.run(
            ["uvx", "--from", wheel, "hebbian-memory", *args], env=env, capture_output=True, text=True, check=False
        )
        check(
            done.returncode == 0, f"`hebbian-memory {' '.join(args)}` exited {done.returncode}: {done.stderr[-2000:]}"
        )
        return done.stdout

    report = json.loads(run("doctor", "--json"))
    check(all(c["ok"] for c in report), f"doctor found problems: {report}")
    page = os.path.join(home, "map.html")
    run("map", "-o", page)
    with open(page, encoding="utf-8") as f:
        check("const DATA = " in f.read(), "map wrote no graph data")


def main() -> None:
    wheel = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as home:
        first = anyio.run(session, wheel, home, True, "auto")
        anyio.run(session, wheel, home, False, "auto")  # uvx keeps this environment: the next launch reuses it
        auto = anyio.run(session, wheel, home, False, "auto")
        legacy = anyio.run(session, wheel, home, False, "legacy")
        offline = anyio.run(session, wheel, home, False, "auto", True)  # the README's offline uvx line
        commands(wheel, home)

    def times(t: tuple[float, float]) -> str:
        return f"opening answered {t[0]:.2f} s, tools listed {t[1]:.2f} s"

    print(
        f"wheel session: {os.path.basename(wheel)} launched with uvx; isolated launch (environment built): "
        f"{times(first)}; relaunch, server/discover: {times(auto)}; relaunch, initialize: {times(legacy)}; "
        f"offline relaunch ({'no network' if can_unshare() else 'uvx --offline'}): {times(offline)}; "
        "remember, recall, stats and forget answered; doctor and map ran"
    )


if __name__ == "__main__":
    main()
