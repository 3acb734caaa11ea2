"""What refusing a damaged database costs at every start: `storage.verify.verify` (every column of every table
read, so DuckDB checks each block's checksum, then point lookups through each one-column index) and
`storage.verify.probe_links` (the links' two-column key looked up by a rolled-back insert, on the connection that
opens the file for writing), on a store of N memories written straight through the Store (as bench/purge.py
writes them) and linked one after another. With the file in the page cache (warm) and evicted from it first
(cold), beside DuckDB's own open and close of the same file and the read of every table alone (the check before
the index lookups).

    uv run python -m bench.verify                   # 10,000 and 100,000 memories
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import duckdb

from bench.locomo import machine
from bench.purge import NOW, fill
from hebbian_memory.storage import Link
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.verify import probe_links, verify

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


def _tables(path: Path) -> None:
    """The read of every table alone (verify's first part, all it did before it looked up the indexes)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        for (table,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            conn.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{table}"').fetchall()


def _check(path: Path) -> None:
    """All that Store.open checks before it migrates: verify, then the links' key on a writing connection."""
    verify(path)
    with duckdb.connect(str(path)) as conn:
        probe_links(conn, path)


def measure(n: int, folder: Path) -> dict[str, object]:
    path = folder / "memory.duckdb"
    store = Store.open(path, NOW)
    fill(store, n)
    ids = sorted(int(i) for i in store.all_ids())
    store.save_links([Link(a, b, 0.5, 1, "temporal", 0, NOW, NOW, NOW) for a, b in pairwise(ids)])
    store.close()
    _check(path)  # warm the cache once
    load_before = os.getloadavg()[0]
    result: dict[str, object] = {
        "memories": n,
        "links": len(ids) - 1,
        "mb": round(path.stat().st_size / 1e6, 1),
        "open_close_s": _median_s(lambda: duckdb.connect(str(path)).close()),
        "tables_warm_s": _median_s(lambda: _tables(path)),
        "check_warm_s": _median_s(lambda: _check(path)),
        "tables_cold_s": _median_s(lambda: _tables(path), lambda: _evict(path)),
        "check_cold_s": _median_s(lambda: _check(path), lambda: _evict(path)),
    }
    return result | {"load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            results.append(measure(n, Path(folder)))
            print(results[-1], flush=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
