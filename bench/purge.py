"""What `forget` costs for the rewrite that removes deleted text from the database file (privacy.purge_after_forget):
a store of N memories (chat-turn length text, 384-dim float32 embeddings) written straight through the Store,
one memory deleted, then the purge timed. Writes wait for it; recall does not read the database meanwhile
except for the hits' rows.

    uv run python -m bench.purge                    # 10,000 and 100,000 memories
"""

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.locomo import machine
from hebbian_memory.inputs import content_hash
from hebbian_memory.storage import NewMemory
from hebbian_memory.storage.duckdb import Store

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def fill(store: Store, n: int) -> None:
    """N memories of chat-turn length with random 384-dim embeddings, 5,000 to a transaction."""
    rng = np.random.default_rng(0)
    for start in range(0, n, 5000):
        rows = [
            NewMemory(
                f"Memory number {i}: something said in a conversation, about as long as a chat turn is.",
                content_hash(str(i)),
                (),
                {},
                0.5,
                NOW,
                rng.standard_normal(384).astype(np.float32),
                "bench",
                None,
            )
            for i in range(start, min(n, start + 5000))
        ]
        store.insert(rows, NOW)


def measure(n: int, folder: Path) -> dict[str, float]:
    store = Store.open(folder / "memory.duckdb", NOW)
    fill(store, n)
    store.delete([1], purge_due=True)
    started = time.perf_counter()
    before, after = store.purge()
    took = time.perf_counter() - started
    store.close()
    return {
        "memories": n,
        "purge_s": round(took, 3),
        "mb_before": round(before / 1e6, 1),
        "mb_after": round(after / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "purge.json")
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            results.append(measure(n, Path(folder)))
            print(results[-1], flush=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
