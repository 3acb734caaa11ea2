"""LoCoMo retrieval benchmark through the real MCP tools.

Every dialog turn of each conversation is remembered through `remember` (one MCP session per LoCoMo
session, the session date as the event time, the speaker in the metadata); then every question (category 5
left out) goes through `recall`. Each conversation gets its own store. Scores per category and overall:
any@1/5/10 (an evidence turn in the top k), all@5/10 (every evidence turn), MRR.

    uv run python -m bench.locomo                       # default settings
    uv run python -m bench.locomo --ablate --out bench/results/locomo-ablations.json
                                                        # each retrieval step on/off (the bench/README.md table)
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from tests.helpers import structured

from hebbian_memory.app import build_server
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding import Embedder, OnnxEmbedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev" / "locomo_dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10)
_DIA = re.compile(r"D(\d+):(\d+)")


def parse_date(raw: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware datetime."""
    return datetime.strptime(raw.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def sessions(conversation: Mapping[str, Any]) -> list[tuple[datetime, list[dict[str, Any]]]]:
    out: list[tuple[int, datetime, list[dict[str, Any]]]] = []
    for key, turns in conversation.items():
        match = re.fullmatch(r"session_(\d+)", key)
        if match and isinstance(turns, list) and turns:
            session: list[dict[str, Any]] = turns  # pyright: ignore[reportUnknownVariableType] -- JSON
            out.append((int(match.group(1)), parse_date(conversation[f"{key}_date_time"]), session))
    return [(when, turns) for _, when, turns in sorted(out, key=lambda s: s[0])]


def evidence_ids(raw: list[str], known: set[str]) -> set[str]:
    """Split and normalise noisy evidence strings ('D8:6; D9:17', 'D30:05'); drop turns that do not exist."""
    found: set[str] = set()
    for item in raw:
        for session, turn in _DIA.findall(item.replace("D:", "D")):
            dia = f"D{int(session)}:{int(turn)}"
            if dia in known:
                found.add(dia)
    return found


async def ingest(sample: Mapping[str, Any], settings: Settings, embedder: Embedder) -> tuple[dict[int, str], float]:
    """Remember every turn through the tool, one MCP session per LoCoMo session; return id -> dia_id."""
    id_to_dia: dict[int, str] = {}
    started = time.perf_counter()
    for when, turns in sessions(sample["conversation"]):
        async with Client(build_server(settings, embedder=embedder)) as client:
            for turn in turns:
                metadata = {"speaker": turn["speaker"], "dia_id": turn["dia_id"]}
                if turn.get("blip_caption"):
                    metadata["caption"] = turn["blip_caption"]
                arguments = {
                    "content": f"{turn['speaker']}: {turn['text']}",
                    "metadata": metadata,
                    "event_time": when.isoformat(),
                }
                result = structured(await client.call_tool("remember", arguments))
                id_to_dia[result["id"]] = turn["dia_id"]
    return id_to_dia, time.perf_counter() - started


async def rehearse(sample: Mapping[str, Any], settings: Settings, embedder: Embedder) -> None:
    """A client that uses its memories: one session asks every question twice, so what comes back twice
    counts as used and the co-access gate links it (nothing here is scored)."""
    async with Client(build_server(settings, embedder=embedder)) as client:
        for qa in sample["qa"]:
            if qa["category"] in CATEGORIES:
                for _ in range(2):
                    structured(await client.call_tool("recall", {"query": qa["question"], "k": 10}))


async def ask(
    sample: Mapping[str, Any], id_to_dia: Mapping[int, str], settings: Settings, embedder: Embedder
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every question (category 5 left out) through `recall` in a fresh server over the stored conversation."""
    known = set(id_to_dia.values())
    results: list[dict[str, Any]] = []
    latencies: list[float] = []
    async with Client(build_server(settings, embedder=embedder)) as client:
        for qa in sample["qa"]:
            if qa["category"] not in CATEGORIES:
                continue
            evidence = evidence_ids(qa.get("evidence", []), known)
            if not evidence:
                continue
            started = time.perf_counter()
            hits = structured(await client.call_tool("recall", {"query": qa["question"], "k": 10}))["hits"]
            latencies.append(time.perf_counter() - started)
            ranked = [id_to_dia[h["id"]] for h in hits]
            results.append({"category": qa["category"], "ranked": ranked, "evidence": sorted(evidence)})
    return results, latencies


def score(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """any@k, all@k and MRR per category and overall."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[CATEGORIES[r["category"]]].append(r)
        groups["overall"].append(r)
    table: dict[str, dict[str, float]] = {}
    for name, rows in groups.items():
        metrics: dict[str, float] = {"n": len(rows)}
        for k in KS:
            metrics[f"any@{k}"] = sum(bool(set(r["ranked"][:k]) & set(r["evidence"])) for r in rows) / len(rows)
        for k in (5, 10):
            metrics[f"all@{k}"] = sum(set(r["evidence"]) <= set(r["ranked"][:k]) for r in rows) / len(rows)
        reciprocal: list[float] = []
        for r in rows:
            ranks = [i for i, dia in enumerate(r["ranked"], 1) if dia in r["evidence"]]
            reciprocal.append(1.0 / ranks[0] if ranks else 0.0)
        metrics["mrr"] = sum(reciprocal) / len(rows)
        table[name] = {k: round(v, 4) for k, v in metrics.items()}
    return table


async def run(variants: Mapping[str, Mapping[str, Any]], data: Path, limit: int | None) -> dict[str, Any]:
    """Each conversation is stored once in its own data dir; every variant then opens that store with its
    own settings (the keyword index is rebuilt from the database at start, so field weights apply too)."""
    samples = json.loads(data.read_text())[:limit]
    embedder = OnnxEmbedder("default", Path(tempfile.mkdtemp()) / "models")
    embedder.load()
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    latencies: dict[str, list[float]] = defaultdict(list)
    ingestion: list[dict[str, Any]] = []
    for sample in samples:
        with tempfile.TemporaryDirectory() as tmp:
            stored = Path(tmp) / "stored"
            base = {"data_dir": str(stored), "log_level": "WARNING"}
            id_to_dia, seconds = await ingest(sample, load_settings(env={}, overrides=base), embedder)
            ingestion.append({"conversation": sample["sample_id"], "turns": len(id_to_dia), "seconds": seconds})
            for n, (name, overrides) in enumerate(variants.items()):
                # Each variant on its own copy: its questions teach the store (co-access), which must not
                # carry over into the next variant.
                copy = shutil.copytree(stored, Path(tmp) / f"variant-{n}")
                settings = load_settings(
                    env={},
                    overrides={**base, "data_dir": str(copy), **{k: v for k, v in overrides.items() if k != REHEARSE}},
                )
                if overrides.get(REHEARSE):
                    await rehearse(sample, settings, embedder)
                found, took = await ask(sample, id_to_dia, settings, embedder)
                results[name].extend(found)
                latencies[name].extend(took)
        print(f"  {sample['sample_id']}: {len(id_to_dia)} turns stored in {seconds:.1f} s", file=sys.stderr)
    return {
        "ingestion": ingestion,
        "runs": {
            name: {
                "settings": dict(overrides),
                "scores": score(results[name]),
                "recall_p50_ms": round(1000 * statistics.median(latencies[name]), 2),
            }
            for name, overrides in variants.items()
        },
    }


# The default configuration, then each retrieval step switched off on its own, then single-signal baselines.
_NO_STEPS = {
    "lexical.previous_weight": 0.0,
    "lexical.next_weight": 0.0,
    "lexical.date_weight": 0.0,
    "lexical.metadata_weight": 0.0,
    "recall.entity_boost": 0.0,
    "recall.answer_boost": 0.0,
    "recall.question_penalty": 0.0,
    "recall.episode_share": 0.0,
    "plasticity.enabled": False,
    "recall.duplicate_cosine": 1.0,
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "- previous-turn field": {"lexical.previous_weight": 0.0},
    "- next-turn field": {"lexical.next_weight": 0.0},
    "- both context fields": {"lexical.previous_weight": 0.0, "lexical.next_weight": 0.0},
    "- date field": {"lexical.date_weight": 0.0},
    "- metadata field": {"lexical.metadata_weight": 0.0},
    "- entity boost": {"recall.entity_boost": 0.0},
    "- answer-kind boost": {"recall.answer_boost": 0.0},
    "- answer kind: time": {"recall.answer_kinds": ["quantity", "title"]},
    "- answer kind: quantity": {"recall.answer_kinds": ["time", "title"]},
    "- answer kind: title": {"recall.answer_kinds": ["time", "quantity"]},
    "- question penalty": {"recall.question_penalty": 0.0},
    "- episode vector (share)": {"recall.episode_share": 0.0},
    "- plasticity (no links, no spreading)": {"plasticity.enabled": False},
    "plasticity, spreading over 1 hop only": {"plasticity.spread_hops": 1},
    "plasticity, spreading over 3 hops": {"plasticity.spread_hops": 3},
    "- near-duplicate collapse": {"recall.duplicate_cosine": 1.0},
    "fusion, no other step": _NO_STEPS,
    "dense only, no other step": {**_NO_STEPS, "recall.dense_weight": 1.0},
    "BM25 only, no other step": {**_NO_STEPS, "recall.dense_weight": 0.0},
}


# Issue 4's comparison: the conversations replayed session by session, with links and spreading or without.
REHEARSE = "rehearse"  # not a setting: the variant first runs rehearse() on the store
PLASTICITY: dict[str, dict[str, Any]] = {
    "plasticity on": {},
    "plasticity off": {"plasticity.enabled": False},
    "plasticity on, after a session that used its memories": {REHEARSE: True},
}


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "locomo.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--ablate", action="store_true", help="run every configuration in ABLATIONS")
    parser.add_argument("--plasticity", action="store_true", help="plasticity on and off, per category")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting override")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    chosen: dict[str, dict[str, Any]] = ABLATIONS if args.ablate else PLASTICITY if args.plasticity else {"default": {}}
    variants = {name: variant | overrides for name, variant in chosen.items()}
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "data": str(args.data)}
    report |= anyio.run(run, variants, args.data, args.limit)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    if args.plasticity:
        for name in report["runs"]:
            print(f"\n{name}:\n\n" + category_table(report, name))


def category_table(report: Mapping[str, Any], name: str) -> str:
    """Markdown: every metric per category for one configuration."""
    lines = ["| category | n | any@1 | any@5 | any@10 | all@5 | all@10 | MRR |", "|---|---|---|---|---|---|---|---|"]
    scores = report["runs"][name]["scores"]
    for category in [*CATEGORIES.values(), "overall"]:
        if category in scores:
            m = scores[category]
            cells = [f"{m[k]:.3f}" for k in ("any@1", "any@5", "any@10", "all@5", "all@10", "mrr")]
            lines.append(f"| {category} | {int(m['n'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(report: Mapping[str, Any]) -> str:
    """Markdown: overall metrics and any@5 per category, one row per configuration."""
    head = [
        "configuration",
        "any@1",
        "any@5",
        "any@10",
        "all@5",
        "all@10",
        "MRR",
        *(f"{c} @5" for c in CATEGORIES.values()),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, run in report["runs"].items():
        o, scores = run["scores"]["overall"], run["scores"]
        cells = [f"{o[m]:.3f}" for m in ("any@1", "any@5", "any@10", "all@5", "all@10", "mrr")]
        cells += [f"{scores[c]['any@5']:.3f}" if c in scores else "-" for c in CATEGORIES.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
