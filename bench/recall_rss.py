"""Does resident memory grow with recalls alone? Many recalls with learning off in one process (the real service and
model, no MCP), RSS read every 1,000 recalls, and tracemalloc's biggest growths between the first 1,000 and the end.
Each sample also counts what Python holds (allocated blocks, objects the collector tracks) and what DuckDB says it
holds (duckdb_memory()), so a rise in RSS can be put on one side or the other without tracemalloc's cost.

    uv run python -m bench.recall_rss                       # 2,000 memories, 10,000 recalls
    uv run python -m bench.recall_rss --recalls 20000 --no-trace
"""

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.latency import MODEL_CACHE, corpus, questions
from bench.locomo import machine
from hebbian_memory._native import release_free_memory
from hebbian_memory.clock import SystemClock
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store

RESULTS = Path(__file__).with_name("results") / "recall-rss.json"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def duckdb_mb(store: Store) -> float:
    """What DuckDB's buffer manager accounts for (tables, indexes, query state), in MB."""
    rows = store._fetch("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")  # pyright: ignore[reportPrivateUsage]
    return float(rows[0][0] or 0) / 2**20


def run(memories: int, recalls: int, trace: bool, data_dir: Path) -> dict[str, Any]:
    settings = load_settings(
        env={},
        overrides={"data_dir": str(data_dir), "model.cache_dir": str(MODEL_CACHE), "plasticity.enabled": False},
    )
    clock = SystemClock()
    store = Store.open(data_dir / "memory.duckdb", clock.now())
    service = MemoryService(settings, store, OnnxEmbedder("default", MODEL_CACHE), clock)
    service.warm_up()
    texts = corpus(memories)
    for start in range(0, len(texts), 500):
        service.remember_many([MemoryInput(content=t) for t in texts[start : start + 500]])
    session = service.start_session("bench")
    asks = questions()
    samples: list[dict[str, float]] = []
    before: tracemalloc.Snapshot | None = None
    started = time.perf_counter()
    for n in range(1, recalls + 1):
        service.recall(asks[n % len(asks)], k=10, session_id=session)
        if n % 1000 == 0:
            service.flush()
            gc.collect()
            release_free_memory()
            samples.append(
                {
                    "recalls": n,
                    "rss_mb": round(rss_mb(), 1),
                    "python_blocks": sys.getallocatedblocks(),
                    "gc_objects": len(gc.get_objects()),
                    "duckdb_mb": round(duckdb_mb(store), 1),
                    "s": round(time.perf_counter() - started, 1),
                }
            )
            print(samples[-1], file=sys.stderr, flush=True)
            if trace and before is None:
                tracemalloc.start(3)
                before = tracemalloc.take_snapshot()
    top: list[str] = []
    if before is not None:
        after = tracemalloc.take_snapshot()
        top = [str(stat) for stat in after.compare_to(before, "traceback")[:15]]
        for line in top:
            print(line, file=sys.stderr)
    service.close()
    return {
        "machine": machine(),
        "memories": memories,
        "recalls": recalls,
        "learning": False,
        "samples": samples,
        "tracemalloc_top_growth": top,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--recalls", type=int, default=10_000)
    parser.add_argument("--no-trace", action="store_true", help="skip tracemalloc (it slows Python allocations)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.memories, args.recalls, not args.no_trace, Path(tmp))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
