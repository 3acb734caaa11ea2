"""Several clients on one data dir, through the real MCP client over stdio: the cost of forwarding a call to
the owner process, a forwarder's memory, and how long a takeover takes when the owner is killed.

    uv run python -m bench.sharing                  # 2,000 memories, 200 samples per figure
"""

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from tests.helpers import server_params, structured

from bench.latency import bulk_import, corpus, percentiles, questions, rss_mb, server_pid
from bench.locomo import machine
from hebbian_memory.sharing.election import read_address

SAMPLES = 200


async def timed_calls(client: Client, texts: list[str], queries: list[str]) -> dict[str, dict[str, float]]:
    remember: list[float] = []
    for text in texts:
        t = time.perf_counter()
        structured(await client.call_tool("remember", {"content": text}))
        remember.append(time.perf_counter() - t)
    recall: list[float] = []
    for query in queries:
        t = time.perf_counter()
        structured(await client.call_tool("recall", {"query": query, "k": 10}))
        recall.append(time.perf_counter() - t)
    return {"remember": percentiles(remember), "recall_k10": percentiles(recall)}


async def measure(n: int, data_dir: Path) -> dict[str, Any]:
    texts = corpus(n + 2 * SAMPLES)
    await bulk_import(data_dir, texts[:n])
    queries = random.Random(3).sample(questions(), SAMPLES)
    result: dict[str, Any] = {"memories": n, "samples": SAMPLES}
    async with Client(server_params(data_dir), read_timeout_seconds=600) as owner:
        structured(await owner.call_tool("recall", {"query": "warm up"}))
        address = read_address(data_dir)
        assert address is not None
        result["owner"] = await timed_calls(owner, texts[n : n + SAMPLES], queries)
        result["owner_rss_mb"] = round(rss_mb(address.pid) or 0.0, 1)
        async with Client(server_params(data_dir), read_timeout_seconds=600) as forwarder:
            structured(await forwarder.call_tool("recall", {"query": "warm up"}))
            forwarder_pid = server_pid()
            result["forwarded"] = await timed_calls(forwarder, texts[n + SAMPLES :], queries)
            result["forwarder_rss_mb"] = round(rss_mb(forwarder_pid) or 0.0, 1)
            os.kill(address.pid, signal.SIGKILL)
            started = time.perf_counter()
            structured(await forwarder.call_tool("remember", {"content": "the first memory after the takeover"}))
            result["takeover_first_call_s"] = round(time.perf_counter() - started, 3)
            # Killed owner's own client is left with a dead server; closing it may report that.
    print(f"  {result}", file=sys.stderr)
    return result


async def run(n: int, data_dir: Path) -> dict[str, Any]:
    try:
        return await measure(n, data_dir)
    except* Exception as group:  # the killed owner's client complains at exit; the figures are already taken
        raise RuntimeError(f"sharing benchmark failed: {group!r}") from group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sharing.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = anyio.run(run, args.memories, Path(tmp) / "data")
    report = {"machine": machine(), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))


def table(r: dict[str, Any]) -> str:
    lines = ["| path | remember p50 / p95 ms | recall k=10 p50 / p95 ms | server RSS MB |", "|---|---|---|---|"]
    for name, key, rss in (("owner", "owner", "owner_rss_mb"), ("forwarded", "forwarded", "forwarder_rss_mb")):
        lines.append(
            f"| {name} | {r[key]['remember']['p50_ms']} / {r[key]['remember']['p95_ms']} "
            f"| {r[key]['recall_k10']['p50_ms']} / {r[key]['recall_k10']['p95_ms']} | {r[rss]} |"
        )
    lines.append("")
    lines.append(
        f"{r['memories']:,} memories, {r['samples']} calls each. After SIGKILL of the owner, the forwarder's next "
        f"remember (which makes it the owner: opens the database, loads the model) returned in "
        f"{r['takeover_first_call_s']} s."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
