"""How long `hebbian-memory map` takes to build its page from an export file: graph data, layout and the written
page, for synthetic stores (memories made over 90 days, chat-turn length text; a share of them linked in
clusters of mostly small sizes, each a chain with some cross links; the rest unlinked). The export itself is
not timed (it is the `export` command's work).

    uv run python -m bench.map        # 1,000 and 10,000 memories, 10% linked; 10,000 with one 3,000-memory cluster
"""

import itertools
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.locomo import machine
from hebbian_memory.cli import graphmap
from hebbian_memory.config import load_settings

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=91)
OUT = Path(__file__).parent / "results" / "map.json"


def export(path: Path, n: int, clusters: list[int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    at = (NOW - timedelta(days=2)).isoformat()
    lines: list[dict[str, Any]] = [
        {
            "type": "memory",
            "id": i,
            "content": f"memory {i}: " + "words " * int(rng.integers(5, 40)),
            "created_at": (START + timedelta(minutes=int(rng.integers(0, 90 * 24 * 60)))).isoformat(),
            "tier": int(rng.choice([1, 1, 2, 3])),
            "strength": float(rng.random()),
        }
        for i in range(1, n + 1)
    ]
    first = 1
    for size in clusters:
        members = list(range(first, first + size))
        first += size
        pairs = [*itertools.pairwise(members)]
        pairs += [sorted(rng.choice(members, 2, replace=False)) for _ in range(size // 3)]
        lines += [
            {"type": "link", "source_id": int(a), "target_id": int(b), "weight": float(rng.random()),
             "created_at": at, "updated_at": at, "last_strengthened_at": at}
            for a, b in pairs
        ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def sizes(linked: int, seed: int = 0) -> list[int]:
    """Cluster sizes adding up to ``linked``: mostly pairs and small groups, a few big ones (Pareto)."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    while linked > 1:
        size = min(linked, max(2, int(rng.pareto(1.2) * 3)))
        out.append(size)
        linked -= size
    return out


def measure(name: str, n: int, clusters: list[int], folder: Path) -> dict[str, Any]:
    source = folder / f"{name}.jsonl"
    export(source, n, clusters)
    rules = load_settings(env={}).plasticity
    started = time.perf_counter()
    data = graphmap.graph_data(source, rules, NOW)
    laid_out = time.perf_counter()
    page = folder / f"{name}.html"
    graphmap.write(page, data)
    done = time.perf_counter()
    return {
        "store": name,
        "memories": n,
        "linked": sum(clusters),
        "clusters": len(clusters),
        "biggest": max(clusters, default=0),
        "drawn": len(data["nodes"]),
        "links drawn": len(data["links"]),
        "graph data s": round(laid_out - started, 2),
        "page s": round(done - started, 2),
        "page MB": round(page.stat().st_size / 1e6, 1),
    }


def main() -> None:
    cases = [
        ("1k", 1_000, sizes(100)),
        ("10k", 10_000, sizes(1_000)),
        ("10k, one big cluster", 10_000, [3_000, *sizes(500)]),
    ]
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(name, n, clusters, Path(folder)) for name, n, clusters in cases]
    OUT.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " --- |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
