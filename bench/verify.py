"""What refusing a damaged database costs at every start: `storage.store.verify` (every column of every table
read, so DuckDB checks each block's checksum) on a store of N memories written straight through the Store (as
bench/purge.py writes them), with the file in the page cache (warm) and evicted from it first (cold), beside
DuckDB's own open and close of the same file.

    uv run python -m bench.verify                   # 10,000 and 100,000 memories
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from bench.locomo import machine
from bench.purge import NOW, fill
from hebbian_memory.storage import Store
from hebbian_memory.storage.store import verify

RUNS = 5


def _evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages go; no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _median_s(work: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    samples: list[float] = []
    for _ in range(RUNS):
        before()
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples), 3)


def measure(n: int, folder: Path) -> dict[str, float]:
    path = folder / "memory.duckdb"
    store = Store.open(path, NOW)
    fill(store, n)
    store.close()
    verify(path)  # warm the cache once
    return {
        "memories": n,
        "mb": round(path.stat().st_size / 1e6, 1),
        "open_close_s": _median_s(lambda: duckdb.connect(str(path)).close()),
        "verify_warm_s": _median_s(lambda: verify(path)),
        "verify_cold_s": _median_s(lambda: verify(path), lambda: _evict(path)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            results.append(measure(n, Path(folder)))
            print(results[-1], flush=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
