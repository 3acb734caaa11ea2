"""A cold start on a filled store, timed on its own: process start to the `initialize` answer and to the first
recall's answer, with no earlier server on the data dir (bench/latency.py restarts right after its import, so
there the previous process may still be closing the file).

    uv run --extra test python -m bench.restart --build 100000 /tmp/store    # fill a store through the MCP tools
    uv run --extra test python -m bench.restart /tmp/store /tmp/copy         # time a start on a fresh copy of it

Run the timing with each checkout's own `uv run` to compare two versions on copies of one store."""

import argparse
import shutil
import time
from pathlib import Path

import anyio
from mcp import Client
from tests.helpers import structured

from bench.latency import bulk_import, corpus, server


async def cold_start(data_dir: Path) -> tuple[float, float]:
    """Seconds from process start to the `initialize` answer and to the first recall's answer."""
    started = time.perf_counter()
    async with Client(server(data_dir), read_timeout_seconds=600) as client:
        initialized = time.perf_counter() - started
        structured(await client.call_tool("recall", {"query": "what did we talk about last week?"}))
        return initialized, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=int, default=None, metavar="N", help="fill SOURCE with N memories")
    parser.add_argument("source", type=Path)
    parser.add_argument("copy", type=Path, nargs="?")
    args = parser.parse_args()
    if args.build is not None:
        print(f"imported at {anyio.run(bulk_import, args.source, corpus(args.build))}/s")
        return
    if args.copy is None:
        parser.error("give the copy's path")
    shutil.rmtree(args.copy, ignore_errors=True)
    shutil.copytree(args.source, args.copy)
    initialized, first = anyio.run(cold_start, args.copy)
    print(f"initialize {initialized:.3f} s, first recall {first:.3f} s")


if __name__ == "__main__":
    main()
