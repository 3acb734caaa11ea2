"""Latency and scale through the real MCP client over stdio: remember, recall, bulk import, start-up, memory.

For each store size N: bulk-import N short memories with remember_many, restart the server and time the
`initialize` answer and the first recall from process start, then time single remembers and recalls (k=10),
and read the server's resident memory.

    uv run python -m bench.latency                        # 1k, 2k, 10k and 100k memories
    uv run python -m bench.latency --sizes 1000 2000      # any sizes
"""

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from tests.helpers import server_params, structured

from bench.locomo import DATA, machine

BATCH = 500
SAMPLES = 200
# One model cache for every benchmark run on this machine, so the model is quantized once, as once per install.
MODEL_CACHE = Path(tempfile.gettempdir()) / "hebbian-memory-bench-models"


def _turns() -> list[str]:
    turns: list[str] = []
    for sample in json.loads(DATA.read_text()):
        for key, session in sample["conversation"].items():
            if key.startswith("session_") and isinstance(session, list):
                turns.extend(str(turn["text"]) for turn in session)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return turns


def corpus(n: int, seed: int = 7) -> list[str]:
    """n distinct short memories (one sentence of 3-12 words from a real conversation turn, plus a place and a
    number that keep them distinct): the size of the notes an assistant stores."""
    sentences = [
        sentence.strip()
        for turn in _turns()
        for sentence in re.split(r"(?<=[.!?])\s+", turn)
        if 3 <= len(sentence.split()) <= 12
    ]
    rng = random.Random(seed)
    places = ["at home", "at work", "in the park", "on the train", "downtown", "at the gym", "in the kitchen"]
    return [f"{rng.choice(sentences)} ({rng.choice(places)}, {i})" for i in range(n)]


def turn_corpus(n: int, seed: int = 11) -> list[str]:
    """n distinct whole conversation turns (LoCoMo; median about 38 tokens), for the long-memory import rate."""
    turns, rng = _turns(), random.Random(seed)
    return [f"{rng.choice(turns)} ({i})" for i in range(n)]


def questions() -> list[str]:
    return [qa["question"] for sample in json.loads(DATA.read_text()) for qa in sample["qa"]]


def server_pid() -> int | None:
    """The newest child process of this one: the stdio server the client started."""
    me, children = os.getpid(), list[int]()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                children.append(int(entry.name))
    return max(children) if children else None


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def server(data_dir: Path) -> StdioServerParameters:
    """The real server over stdio, with the benchmarks' model cache."""
    return server_params(data_dir, env={"HEBBIAN_MEMORY_MODEL_CACHE_DIR": str(MODEL_CACHE)})


async def bulk_import(data_dir: Path, texts: list[str]) -> float:
    """Store texts through remember_many in batches, once the server is ready (start-up is timed on its own
    below); memories per second."""
    async with Client(server(data_dir), read_timeout_seconds=600) as client:
        structured(await client.call_tool("recall", {"query": "ready?"}))  # waits for the model and indexes
        started = time.perf_counter()
        for i in range(0, len(texts), BATCH):
            batch = [{"content": t} for t in texts[i : i + BATCH]]
            structured(await client.call_tool("remember_many", {"memories": batch}))
        return round(len(texts) / (time.perf_counter() - started), 1)


def median_words(texts: list[str]) -> float:
    return statistics.median(len(t.split()) for t in texts)


async def measure(n: int, data_dir: Path) -> dict[str, Any]:
    texts = corpus(n + SAMPLES)
    result: dict[str, Any] = {"memories": n}
    result["bulk_import_per_s"] = await bulk_import(data_dir, texts[:n])
    print(f"  {n}: imported at {result['bulk_import_per_s']}/s", file=sys.stderr)

    # A restart on the filled store: how soon is it usable?
    started = time.perf_counter()
    async with Client(server(data_dir), read_timeout_seconds=600) as client:
        result["initialize_s"] = round(time.perf_counter() - started, 3)
        structured(await client.call_tool("recall", {"query": "what did we talk about last week?"}))
        result["first_recall_s"] = round(time.perf_counter() - started, 3)
        pid = server_pid()

        remember: list[float] = []
        for text in texts[n : n + SAMPLES]:
            t = time.perf_counter()
            structured(await client.call_tool("remember", {"content": text}))
            remember.append(time.perf_counter() - t)
        result["remember"] = percentiles(remember)

        recall: list[float] = []
        for query in random.Random(3).sample(questions(), SAMPLES):
            t = time.perf_counter()
            structured(await client.call_tool("recall", {"query": query, "k": 10}))
            recall.append(time.perf_counter() - t)
        result["recall_k10"] = percentiles(recall)
        result["rss_mb"] = round(rss_mb(pid) or 0.0, 1)
    print(f"  {n}: {result}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latency.json")
    parser.add_argument("--turns", type=int, default=2000, help="whole conversation turns for the long-text import")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": machine(),
        "samples": SAMPLES,
        "corpus_median_words": median_words(corpus(2000)),
        "runs": [],
    }
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            report["runs"].append(anyio.run(measure, n, Path(tmp) / "data"))
    turns = turn_corpus(args.turns)
    with tempfile.TemporaryDirectory() as tmp:
        rate = anyio.run(bulk_import, Path(tmp) / "data", turns)
    report["turn_import"] = {"memories": len(turns), "median_words": median_words(turns), "per_s": rate}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))


def table(report: dict[str, Any]) -> str:
    """Markdown, one row per store size."""
    head = ["memories", "remember p50 / p95 ms", "recall k=10 p50 / p95 ms", "bulk import /s"]
    head += ["opening answered s", "first recall s", "RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["runs"]:
        lines.append(
            f"| {r['memories']:,} | {r['remember']['p50_ms']} / {r['remember']['p95_ms']} "
            f"| {r['recall_k10']['p50_ms']} / {r['recall_k10']['p95_ms']} | {r['bulk_import_per_s']:,} "
            f"| {r['initialize_s']} | {r['first_recall_s']} | {r['rss_mb']} |"
        )
    lines.append("")
    lines.append(
        f"Short memories: median {report['corpus_median_words']} words. Whole conversation turns (median "
        f"{report['turn_import']['median_words']} words) import at {report['turn_import']['per_s']}/s "
        f"({report['turn_import']['memories']:,} memories)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
