"""The first call on a fresh data dir, through the real MCP client over stdio: from launching the server to the
first `remember` answered, with a cold user cache (the model is quantized first) and a warm one (a new data dir
reuses the model another data dir prepared).

    uv run --extra test python -m bench.first_call              # 3 runs of each
    uv run --extra test python -m bench.first_call --runs 5
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from tests.helpers import structured

from bench.scoring import machine


def server(data_dir: Path, user_cache: Path) -> StdioServerParameters:
    """The real server with nothing but a user cache of its own: the model goes where the default puts it."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "hebbian_memory", "--data-dir", str(data_dir)],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir.parent), "XDG_CACHE_HOME": str(user_cache)},
    )


async def first_call(data_dir: Path, user_cache: Path) -> dict[str, float]:
    """Seconds from launch to the opening answer and to the first remember's answer."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    async with Client(server(data_dir, user_cache), read_timeout_seconds=600) as client:
        opened = time.perf_counter() - started
        structured(await client.call_tool("remember", {"content": "The first memory of a fresh data dir."}))
        answered = time.perf_counter() - started
    return {"initialize_s": round(opened, 3), "first_remember_s": round(answered, 3), "load_1min": round(load, 2)}


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    times = [r["first_remember_s"] for r in runs]
    return {
        "median_s": round(statistics.median(times), 2),
        "min_s": round(min(times), 2),
        "max_s": round(max(times), 2),
    }


def measure(runs: int) -> dict[str, Any]:
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            user_cache = Path(tmp) / "cache"
            cold.append(anyio.run(first_call, Path(tmp) / "a" / "data", user_cache))
            warm.append(anyio.run(first_call, Path(tmp) / "b" / "data", user_cache))
        print(f"  run {i + 1}: cold {cold[-1]}, warm {warm[-1]}", file=sys.stderr)
    return {"runs": runs, "cold": {**summary(cold), "each": cold}, "warm": {**summary(warm), "each": warm}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "first-call.json")
    args = parser.parse_args()
    report = {"machine": machine(), **measure(args.runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))


def table(r: dict[str, Any]) -> str:
    lines = ["| user cache | first remember answered, s: median (min-max) | 1-min load at launch |", "|---|---|---|"]
    for name, key in (("cold (model quantized first)", "cold"), ("warm (new data dir, model reused)", "warm")):
        loads = [run["load_1min"] for run in r[key]["each"]]
        lines.append(
            f"| {name} | {r[key]['median_s']} ({r[key]['min_s']}-{r[key]['max_s']}) | {min(loads)}-{max(loads)} |"
        )
    lines.append("")
    m = r["machine"]
    lines.append(f"{r['runs']} runs of each; {m['cores']} cores, Python {m['python']}, {m['platform']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
