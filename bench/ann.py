"""How many of the true nearest memories the vector index finds, and at what cost, by store size and HNSW
search breadth (`index.expansion_search`).

The latency benchmark's short memories are embedded with the bundled model and added to the server's own
VectorIndex 500 at a time (as a bulk import adds them), with the configured dtype, connectivity and
expansion_add. LoCoMo questions are then searched for their 50 nearest (recall's candidate count) at each
search breadth, against the exact cosine ranking over the float32 vectors the database keeps.

    uv run --extra test python -m bench.ann                       # 2k, 10k and 100k memories
    uv run --extra test python -m bench.ann --sizes 10000 --queries 100
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.latency import BATCH, MODEL_CACHE, corpus
from bench.locomo import DATA, machine
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.retrieval.vectors import VectorIndex

CANDIDATES = 50
BREADTHS = (96, 192, 256, 320, 400, 512)


def questions(n: int) -> list[str]:
    """The first ``n`` LoCoMo questions, taken round-robin over the conversations."""
    per_sample = [[str(qa["question"]) for qa in sample["qa"]] for sample in json.loads(DATA.read_text())]
    mixed = [q for group in zip(*per_sample, strict=False) for q in group]
    return mixed[:n]


def measure(vectors: np.ndarray, queries: np.ndarray, breadths: tuple[int, ...], model_id: str) -> dict[str, Any]:
    n = len(vectors)
    ids = np.arange(1, n + 1, dtype=np.int64)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :CANDIDATES] + 1
    settings = load_settings(env={})
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index = VectorIndex(Path(tmp) / "vectors.usearch", model_id, vectors.shape[1], settings.index)
        index.open(np.zeros(0, dtype=np.int64), lambda _ids: vectors[:0])
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            index.add(ids[start : start + BATCH].tolist(), vectors[start : start + BATCH])
        add_per_s = n / (time.perf_counter() - started)
        for breadth in breadths:
            index._index.expansion_search = breadth  # pyright: ignore[reportPrivateUsage] -- a sweep, not a setting
            times: list[float] = []
            found: list[list[int]] = []
            for q in queries:
                t = time.perf_counter()
                hits = index.search(q, CANDIDATES)
                times.append((time.perf_counter() - t) * 1e3)
                found.append([i for i, _ in hits])
            rows.append(
                {
                    "expansion_search": breadth,
                    "recall_at_10": round(_recall(found, exact, 10), 4),
                    "recall_at_50": round(_recall(found, exact, CANDIDATES), 4),
                    "search_p50_ms": round(statistics.median(times), 3),
                }
            )
    return {"memories": n, "add_per_s": round(add_per_s), "configured": settings.index.expansion_search, "rows": rows}


def _recall(found: list[list[int]], exact: np.ndarray, k: int) -> float:
    """Mean share of the exact top ``k`` that the index returned in its top ``k``."""
    return float(np.mean([len(set(f[:k]) & set(e[:k].tolist())) / k for f, e in zip(found, exact, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ann.json")
    args = parser.parse_args()
    embedder = OnnxEmbedder("default", MODEL_CACHE)
    texts = corpus(max(args.sizes))  # the same seed: each smaller corpus is a prefix of the largest
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    queries = np.asarray(embedder.embed(questions(args.queries)), dtype=np.float32)
    report: dict[str, Any] = {"machine": machine(), "queries": len(queries), "candidates": CANDIDATES, "runs": []}
    for n in args.sizes:
        report["runs"].append(measure(vectors[:n], queries, BREADTHS, embedder.model_id))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))


def table(report: dict[str, Any]) -> str:
    """Markdown, one row per store size and search breadth."""
    lines = [
        "| memories | expansion_search | recall@10 | recall@50 | search p50 ms |",
        "|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        for r in run["rows"]:
            mark = " (default)" if r["expansion_search"] == run["configured"] else ""
            lines.append(
                f"| {run['memories']:,} | {r['expansion_search']}{mark} | {r['recall_at_10']} | {r['recall_at_50']} "
                f"| {r['search_p50_ms']} |"
            )
    adds = ", ".join(f"{run['memories']:,}: {run['add_per_s']:,}/s" for run in report["runs"])
    lines += ["", f"Vectors added 500 at a time ({adds}); {report['queries']} LoCoMo questions."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
