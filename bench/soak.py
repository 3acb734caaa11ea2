"""Soak: one long session through the real service and model, with learning on: recalls and remembers interleaved,
the flush every 100 calls and a consolidation pass every 2,000 (the server's loops, run in line), the clock moved
2 s a call. Resident memory and table sizes at the start and the end, and RSS along the way.

    uv run python -m bench.soak                                  # the full run: 100,000 recalls, 20,000 remembers
    uv run python -m bench.soak --recalls 6000 --remembers 1200  # a short one
"""

import argparse
import gc
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.latency import MODEL_CACHE, corpus, questions
from bench.locomo import machine
from bench.recall_rss import rss_mb
from hebbian_memory._native import release_free_memory
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store

RESULTS = Path(__file__).with_name("results") / "soak.json"
SEED_MEMORIES = 2000
FLUSH_EVERY = 100
PASS_EVERY = 2000


def tables(path: Path) -> dict[str, int]:
    """Rows per table and the file's bytes, read from the closed database."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        counts: dict[str, int] = {}
        for name in ("memories", "associations", "access_events"):
            row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            counts[name] = int(row[0]) if row else 0
    finally:
        conn.close()
    return {**counts, "db_bytes": path.stat().st_size}


def open_service(data_dir: Path, clock: ManualClock) -> MemoryService:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": str(MODEL_CACHE)})
    service = MemoryService(
        settings, Store.open(data_dir / "memory.duckdb", clock.now()), OnnxEmbedder("default", MODEL_CACHE), clock
    )
    service.warm_up()
    return service


def run(recalls: int, remembers: int, data_dir: Path) -> dict[str, Any]:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    texts = corpus(SEED_MEMORIES + remembers)
    service = open_service(data_dir, clock)
    for start in range(0, SEED_MEMORIES, 500):
        service.remember_many([MemoryInput(content=t) for t in texts[start : start + 500]])
    service.close()
    start_tables = tables(data_dir / "memory.duckdb")
    service = open_service(data_dir, clock)
    session = service.start_session("soak")
    gc.collect()
    release_free_memory()
    start_rss = rss_mb()
    asks, fresh = questions(), iter(texts[SEED_MEMORIES:])
    calls = recalls + remembers
    every = max(calls // max(remembers, 1), 1)  # a remember every `every` calls
    samples: list[dict[str, float]] = []
    started = time.perf_counter()
    done_recalls = done_remembers = 0
    for n in range(1, calls + 1):
        clock.advance(timedelta(seconds=2))
        if n % every == 0 and done_remembers < remembers:
            service.remember(next(fresh), session_id=session)
            done_remembers += 1
        elif done_recalls < recalls:
            service.recall(asks[n % len(asks)], k=10, session_id=session)
            done_recalls += 1
        if n % FLUSH_EVERY == 0:
            service.flush()
        if n % PASS_EVERY == 0:
            service.consolidate()
            gc.collect()
            release_free_memory()
            samples.append({"calls": n, "rss_mb": round(rss_mb(), 1), "s": round(time.perf_counter() - started, 1)})
            print(samples[-1], file=sys.stderr, flush=True)
    service.consolidate()
    gc.collect()
    release_free_memory()
    end_rss = rss_mb()
    elapsed = time.perf_counter() - started
    service.close()
    return {
        "machine": machine(),
        "recalls": done_recalls,
        "remembers": done_remembers,
        "seed_memories": SEED_MEMORIES,
        "learning": True,
        "seconds": round(elapsed, 1),
        "start": {"rss_mb": round(start_rss, 1), **start_tables},
        "end": {"rss_mb": round(end_rss, 1), **tables(data_dir / "memory.duckdb")},
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recalls", type=int, default=100_000)
    parser.add_argument("--remembers", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.recalls, args.remembers, Path(tmp))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
