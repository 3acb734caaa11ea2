"""Paraphrase recall benchmark (the assistant shape) through the real MCP tools.

The hand-written development set (``../shared/data/paraphrase-dev``: 150 short facts about one person, 220
questions asked in other words, 30 of them unanswerable), scored as its README says: the memories go through
``remember`` in file order, 20 per client session, with their event times; every question then goes through
``recall`` (k=10) in a fresh session. Answerable questions: hit@1, hit@5, MRR (and per kind); multi-answer
questions: all@5; unanswerable ones: the AUROC of the top hit's relevance (answerable positive), and what the
default relevance threshold does (answerable questions that lose their answer, unanswerable ones answered with
nothing). Plain cosine with the same bundled model is scored beside it, the same way.

    uv run --extra test python -m bench.paraphrase                  # -> bench/results/paraphrase.json
    uv run --extra test python -m bench.paraphrase --set recall.residual_share=0
"""

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client
from tests.helpers import structured

from bench.scoring import auroc, machine
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.transport.app import build_server

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "paraphrase-dev" / "set.json"
PER_SESSION = 20
K = 10


async def ingest(memories: Sequence[Mapping[str, Any]], settings: Settings, embedder: Embedder) -> list[int]:
    """Remember every memory in order, ``PER_SESSION`` per client session; the id of each."""
    ids: list[int] = []
    for start in range(0, len(memories), PER_SESSION):
        async with Client(build_server(settings, embedder=embedder)) as client:
            for memory in memories[start : start + PER_SESSION]:
                arguments: dict[str, Any] = {"content": memory["content"]}
                if memory.get("event_time"):
                    arguments["event_time"] = memory["event_time"]
                ids.append(structured(await client.call_tool("remember", arguments))["id"])
    return ids


async def ask(
    questions: Sequence[Mapping[str, Any]], ids: Sequence[int], settings: Settings, embedder: Embedder
) -> list[dict[str, Any]]:
    """Every question through ``recall`` (k=10, every hit, whatever its relevance), in one fresh session."""
    index_of = {memory_id: n for n, memory_id in enumerate(ids)}
    out: list[dict[str, Any]] = []
    async with Client(build_server(settings, embedder=embedder)) as client:
        for q in questions:
            arguments: dict[str, Any] = {"query": q["q"], "k": K, "min_relevance": 0}
            result = structured(await client.call_tool("recall", arguments))
            hits = result["hits"]
            out.append(
                {
                    "ranked": [index_of[h["id"]] for h in hits],
                    "relevance": [h["relevance"] for h in hits],
                }
            )
    return out


def cosine_baseline(data: Mapping[str, Any], embedder: Embedder) -> list[dict[str, Any]]:
    """Plain cosine with the same model: every memory's vector against the question's, best first."""
    memories = embedder.embed([m["content"] for m in data["memories"]])
    out: list[dict[str, Any]] = []
    for q in data["questions"]:
        cosines = memories @ embedder.embed([q["q"]])[0]
        order: list[int] = np.argsort(-cosines, kind="stable")[:K].tolist()
        out.append({"ranked": order, "relevance": [float(cosines[i]) for i in order]})
    return out


def score(
    questions: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], threshold: float | None = None
) -> dict[str, Any]:
    """hit@1, hit@5, MRR (answerable, and per kind), all@5 (multi), AUROC of the top relevance; with
    ``threshold``, what dropping the hits below it does."""
    table: dict[str, Any] = {}
    kinds = sorted({q["kind"] for q in questions if q["answers"]})
    for name in ["answerable", *kinds]:
        rows = [
            (q, r)
            for q, r in zip(questions, runs, strict=True)
            if q["answers"] and (name == "answerable" or q["kind"] == name)
        ]
        first = [_first_rank(r["ranked"], q["answers"]) for q, r in rows]
        table[name] = {
            "n": len(rows),
            "hit@1": _share(f == 1 for f in first),
            "hit@5": _share(f is not None and f <= 5 for f in first),
            "hit@10": _share(f is not None for f in first),
            "mrr": round(sum(1 / f for f in first if f) / len(rows), 4),
        }
    multi = [(q, r) for q, r in zip(questions, runs, strict=True) if len(q["answers"]) > 1]
    table["multi"]["all@5"] = _share(set(q["answers"]) <= set(r["ranked"][:5]) for q, r in multi)
    top = [
        (bool(q["answers"]), r["relevance"][0] if r["relevance"] else None)
        for q, r in zip(questions, runs, strict=True)
    ]
    table["auroc"] = round(auroc([s for a, s in top if a], [s for a, s in top if not a]), 4)
    if threshold is not None:
        table["threshold"] = threshold_effect(questions, runs, threshold)
    return table


def threshold_effect(
    questions: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], threshold: float
) -> dict[str, Any]:
    """With hits below ``threshold`` dropped: answerable questions whose answer (found in the top 10) is
    lost, and unanswerable ones that come back empty."""
    lost = answered = empty = unanswerable = 0
    for q, r in zip(questions, runs, strict=True):
        kept = [i for i, s in zip(r["ranked"], r["relevance"], strict=True) if s >= threshold]
        if q["answers"]:
            if set(q["answers"]) & set(r["ranked"]):
                answered += 1
                lost += not set(q["answers"]) & set(kept)
        else:
            unanswerable += 1
            empty += not kept
    return {
        "threshold": threshold,
        "answerable_found": answered,
        "answer_lost": round(lost / max(answered, 1), 4),
        "unanswerable_empty": round(empty / max(unanswerable, 1), 4),
    }


def _first_rank(ranked: Sequence[int], answers: Sequence[int]) -> int | None:
    return next((n for n, i in enumerate(ranked, 1) if i in answers), None)


def _share(flags: Any) -> float:
    values = list(flags)
    return round(sum(values) / max(len(values), 1), 4)


async def run(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    embedder = OnnxEmbedder("default", Path(tempfile.mkdtemp()) / "models")
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={}, overrides={"data_dir": tmp, "log_level": "WARNING", **overrides})
        started = time.perf_counter()
        ids = await ingest(data["memories"], settings, embedder)
        stored = time.perf_counter() - started
        server_runs = await ask(data["questions"], ids, settings, embedder)
    threshold = settings.recall.min_relevance
    return {
        "settings": dict(overrides),
        "seconds_to_store": round(stored, 1),
        "server": score(data["questions"], server_runs, threshold),
        "cosine": score(data["questions"], cosine_baseline(data, embedder)),
        "questions": [
            {"q": q["q"], "kind": q["kind"], "answers": q["answers"], **r}
            for q, r in zip(data["questions"], server_runs, strict=True)
        ],
    }


def table(report: Mapping[str, Any]) -> str:
    """Markdown: the server and plain cosine side by side."""
    head = "| ranking | hit@1 | hit@5 | MRR | paraphrase @1 / @5 | overlap @1 / @5 | multi @5 / all@5 | AUROC |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name in ("server", "cosine"):
        s = report[name]
        a, p, o, m = s["answerable"], s["paraphrase"], s["overlap"], s["multi"]
        lines.append(
            f"| {name} | {a['hit@1']:.3f} | {a['hit@5']:.3f} | {a['mrr']:.3f} | {p['hit@1']:.3f} / {p['hit@5']:.3f}"
            f" | {o['hit@1']:.3f} / {o['hit@5']:.3f} | {m['hit@5']:.3f} / {m['all@5']:.3f} | {s['auroc']:.3f} |"
        )
    t = report["server"].get("threshold")
    if t:
        lines.append(
            f"\nDefault min_relevance {t['threshold']}: {t['answer_lost']:.1%} of the {t['answerable_found']} "
            f"answerable questions answered in the top 10 lose their answer; {t['unanswerable_empty']:.1%} of the "
            "unanswerable questions come back empty."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "paraphrase.json")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting override")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    data = json.loads(args.data.read_text())
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "data": str(args.data)}
    report |= anyio.run(run, data, overrides)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"({report['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
