"""Many machines on one PostgreSQL, with kills (the must-show run): 4 machines (data dirs) on one database, 4
clients on each (real stdio server processes driven by the real MCP client), 250 calls per client mixing
remember (shared texts race), recall (of other machines' acknowledged texts) and associate (known strengths),
while 8 owner processes are SIGKILLed. The database is then read directly: acknowledged remembers lost,
duplicates, links whose weight no count of the associates sent explains, recall misses (tests/peer_stream.py).

    uv run python -m bench.peers                    # writes bench/results/peers.json
    uv run python -m bench.peers --machines 2 --clients 2 --ops 40 --kills 3
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import anyio
from tests import postgres
from tests.helpers import FIXED_TIME, MODEL_CACHE_ENV
from tests.peer_stream import PEER_ENV, STRENGTHS, Shape, check, run_peers

from bench.latency import MODEL_CACHE
from bench.locomo import machine

OUT = Path(__file__).parent / "results" / "peers.json"
ENV = {
    **PEER_ENV,
    MODEL_CACHE_ENV: str(MODEL_CACHE),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4, help="per machine")
    parser.add_argument("--ops", type=int, default=250, help="per client")
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT)
    a = parser.parse_args()
    shape = Shape(a.machines, a.clients, a.ops, a.kills, env=ENV)
    load = os.getloadavg()
    try:
        url = postgres.database_url(postgres.create_database())
        with tempfile.TemporaryDirectory(prefix="hebbian-peers-") as root:
            run, measured = anyio.run(run_peers, shape, Path(root), url)
        counts = check(run, url)
    finally:
        postgres.shutdown()
    result = {
        "machine": machine(),
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "shape": {
            "machines": shape.machines,
            "clients_per_machine": shape.clients,
            "ops_per_client": shape.ops,
            "kills_planned": shape.kills,
            "pairs": len(run.pairs),
            "pair_ends_per_client": shape.pair_ends,
            "strengths": list(STRENGTHS),
            "clock": FIXED_TIME,
            "settings": {k: v for k, v in ENV.items() if k != MODEL_CACHE_ENV},
        },
        "seconds": round(measured["seconds"], 1),
        "total_rss_mb_peak": round(measured.get("total_rss_mb", 0.0)),
        "largest_process_rss_mb_peak": round(measured.get("largest_process_rss_mb", 0.0)),
        "counts": {**run.counts, **counts},
        "misses": run.misses[:20],
        "problems": run.problems[:20],
        "problem_count": len(run.problems),
    }
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
