"""LoCoMo retrieval benchmark through the real MCP tools.

Every dialog turn of each conversation (`--shape turns`), or every fact of LoCoMo's per-session observations
(`--shape observations`), is remembered through `remember`: one MCP session per LoCoMo session, in session
order, the session date as the event time. With `--protocol metadata` the speaker and turn ids go in the
metadata; with `--protocol plain` only the text is sent, as a plain MCP client would (the speaker, and an
image's caption, in the text). Then every question (category 5 left out) goes through `recall`. Each
conversation gets its own store. A hit counts when it is (or, for a fact, is tied to) an evidence turn.
Scores per category and overall: any@1/5/10 (an evidence turn in the top k), all@5/10 (every evidence turn
covered by the top k), MRR (the first hit tied to an evidence turn).

    uv run --extra test python -m bench.locomo            # default settings -> bench/results/locomo.json
    uv run --extra test python -m bench.locomo --ablate --out bench/results/locomo-ablations.json
                                                          # each retrieval step on/off (the bench/README.md table)
    uv run --extra test python -m bench.locomo --shape observations --protocol plain --baselines
                                                          # default and cosine only on the facts
                                                          # -> bench/results/locomo-observations-plain.json
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
from mcp import Client
from tests.helpers import structured

from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.transport.app import build_server

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev" / "locomo_dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10)
_DIA = re.compile(r"D(\d+):(\d+)")
Shape = Literal["turns", "observations"]
Protocol = Literal["metadata", "plain"]
# Per LoCoMo session: the event time, then each memory's `remember` arguments and the turns it is tied to.
Plan = list[tuple[datetime, list[tuple[dict[str, Any], set[str]]]]]


@dataclass
class Answer:
    category: int
    ranked: list[set[str]]  # per hit, best first: the turns it is tied to (one for a turn)
    evidence: set[str]
    relevance: list[float]  # per hit
    floor: float  # the default min_relevance (recall is asked with 0, so that ranking is scored on its own)


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


def dia_ids(raw: str | list[str]) -> set[str]:
    """Split and normalise noisy turn ids ('D8:6; D9:17', 'D30:05', ['D1:3', 'D1:5'])."""
    items = [raw] if isinstance(raw, str) else raw
    return {f"D{int(s)}:{int(t)}" for item in items for s, t in _DIA.findall(item.replace("D:", "D"))}


def evidence_ids(raw: list[str], known: set[str]) -> set[str]:
    """The evidence turns, normalised; those that do not exist in the conversation dropped."""
    return dia_ids(raw) & known


def known_turns(sample: Mapping[str, Any]) -> set[str]:
    """Every turn id of the conversation (the facts' ids are not trusted to cover them)."""
    return {dia for _, turns in sessions(sample["conversation"]) for turn in turns for dia in dia_ids(turn["dia_id"])}


def turn_arguments(turn: Mapping[str, Any], protocol: Protocol) -> dict[str, Any]:
    content = f"{turn['speaker']}: {turn['text']}"
    caption = turn.get("blip_caption")
    if protocol == "plain":  # what a plain client sends: the text only, the image's caption in it
        return {"content": content + (f" [shared an image: {caption}]" if caption else "")}
    metadata = {"speaker": turn["speaker"], "dia_id": turn["dia_id"]}
    if caption:
        metadata["caption"] = caption
    return {"content": content, "metadata": metadata}


def observations(sample: Mapping[str, Any], protocol: Protocol) -> Plan:
    """Each session's facts (they name their subject), in the order of the turns they come from."""
    out: list[tuple[int, datetime, list[tuple[dict[str, Any], set[str]]]]] = []
    for key, by_speaker in sample["observation"].items():
        match = re.fullmatch(r"session_(\d+)_observation", key)
        if not match:
            continue
        facts: list[tuple[dict[str, Any], set[str]]] = []
        for speaker, items in by_speaker.items():
            for text, raw in items:
                tied = dia_ids(raw)
                metadata = {"speaker": speaker, "dia_ids": sorted(tied, key=_turn_order)}
                facts.append(({"content": text} | ({"metadata": metadata} if protocol == "metadata" else {}), tied))
        facts.sort(key=lambda fact: min(map(_turn_order, fact[1]), default=(sys.maxsize, 0)))
        when = parse_date(sample["conversation"][f"session_{match.group(1)}_date_time"])
        out.append((int(match.group(1)), when, facts))
    return [(when, facts) for _, when, facts in sorted(out, key=lambda s: s[0])]


def _turn_order(dia: str) -> tuple[int, int]:
    session, turn = dia[1:].split(":")
    return int(session), int(turn)


def plan(sample: Mapping[str, Any], shape: Shape, protocol: Protocol) -> Plan:
    if shape == "observations":
        return observations(sample, protocol)
    return [
        (when, [(turn_arguments(turn, protocol), dia_ids(turn["dia_id"])) for turn in turns])
        for when, turns in sessions(sample["conversation"])
    ]


async def ingest(memories: Plan, settings: Settings, embedder: Embedder) -> tuple[dict[int, set[str]], float]:
    """Remember every memory through the tool, one MCP session per LoCoMo session; return id -> its turns."""
    id_to_dias: dict[int, set[str]] = defaultdict(set)
    started = time.perf_counter()
    for when, items in memories:
        async with Client(build_server(settings, embedder=embedder)) as client:
            for arguments, tied in items:
                result = structured(await client.call_tool("remember", arguments | {"event_time": when.isoformat()}))
                id_to_dias[result["id"]] |= tied  # the same text again is the same memory: tied to both
    return dict(id_to_dias), time.perf_counter() - started


async def rehearse(sample: Mapping[str, Any], settings: Settings, embedder: Embedder) -> None:
    """A client that uses its memories: one session asks every question twice, so what comes back twice
    counts as used and the co-access gate links it (nothing here is scored)."""
    async with Client(build_server(settings, embedder=embedder)) as client:
        for qa in sample["qa"]:
            if qa["category"] in CATEGORIES:
                for _ in range(2):
                    structured(await client.call_tool("recall", {"query": qa["question"], "k": 10}))


async def ask(
    sample: Mapping[str, Any], id_to_dias: Mapping[int, set[str]], settings: Settings, embedder: Embedder
) -> tuple[list[Answer], list[float]]:
    """Every question (category 5 left out) through `recall` in a fresh server over the stored conversation."""
    known = known_turns(sample)
    results: list[Answer] = []
    latencies: list[float] = []
    async with Client(build_server(settings, embedder=embedder)) as client:
        for qa in sample["qa"]:
            if qa["category"] not in CATEGORIES:
                continue
            evidence = evidence_ids(qa.get("evidence", []), known)
            if not evidence:
                continue
            started = time.perf_counter()
            arguments = {"query": qa["question"], "k": 10, "min_relevance": 0}
            hits = structured(await client.call_tool("recall", arguments))["hits"]
            latencies.append(time.perf_counter() - started)
            ranked = [id_to_dias[h["id"]] for h in hits]
            relevance = [h["relevance"] for h in hits]
            results.append(Answer(qa["category"], ranked, evidence, relevance, settings.recall.min_relevance))
    return results, latencies


def score(results: list[Answer]) -> dict[str, dict[str, float]]:
    """any@k, all@k and MRR per category and overall; a hit counts when it is tied to an evidence turn."""
    groups: dict[str, list[Answer]] = defaultdict(list)
    for r in results:
        groups[CATEGORIES[r.category]].append(r)
        groups["overall"].append(r)
    table: dict[str, dict[str, float]] = {}
    for name, rows in groups.items():
        metrics: dict[str, float] = {"n": len(rows)}
        for k in KS:
            metrics[f"any@{k}"] = sum(any(hit & r.evidence for hit in r.ranked[:k]) for r in rows) / len(rows)
        for k in (5, 10):
            metrics[f"all@{k}"] = sum(r.evidence <= set[str]().union(*r.ranked[:k]) for r in rows) / len(rows)
        reciprocal: list[float] = []
        for r in rows:
            ranks = [i for i, hit in enumerate(r.ranked, 1) if hit & r.evidence]
            reciprocal.append(1.0 / ranks[0] if ranks else 0.0)
        metrics["mrr"] = sum(reciprocal) / len(rows)
        # Of the questions answered in the top 10, the share whose every evidence hit the default threshold drops.
        found = [r for r in rows if any(hit & r.evidence for hit in r.ranked)]
        lost = [
            r
            for r in found
            if all(rel < r.floor for hit, rel in zip(r.ranked, r.relevance, strict=True) if hit & r.evidence)
        ]
        metrics["lost_at_default"] = len(lost) / max(len(found), 1)
        table[name] = {k: round(v, 4) for k, v in metrics.items()}
    return table


class _Databases:
    """Where a run keeps its stores on PostgreSQL (--backend postgres): the tests' embedded server, one database
    per conversation and a copy per variant. For DuckDB every method is a no-op (the data dir holds the store)."""

    def __init__(self, backend: str) -> None:
        self.on = backend == "postgres"
        self.made: list[str] = []

    def settings(self, name: str | None) -> dict[str, Any]:
        if not self.on or name is None:
            return {}
        from tests import postgres

        return {"storage.backend": "postgres", "storage.url": postgres.database_url(name)}

    def new(self, template: str | None = None) -> str | None:
        if not self.on:
            return None
        from tests import postgres

        name = postgres.create_database() if template is None else postgres.copy_database(template)
        self.made.append(name)
        return name

    def drop_all(self) -> None:
        if self.on:
            from tests import postgres

            for name in self.made:
                postgres.drop_database(name)
            self.made.clear()


async def run(
    variants: Mapping[str, Mapping[str, Any]],
    data: Path,
    limit: int | None,
    shape: Shape,
    protocol: Protocol,
    backend: str = "duckdb",
) -> dict[str, Any]:
    """Each conversation is stored once in its own data dir (and database, on PostgreSQL); every variant then
    opens a copy of that store with its own settings (the keyword index is rebuilt from the database at start,
    so field weights apply too)."""
    databases = _Databases(backend)
    samples = json.loads(data.read_text())[:limit]
    embedder = OnnxEmbedder("default", Path(tempfile.mkdtemp()) / "models")
    embedder.load()
    results: dict[str, list[Answer]] = defaultdict(list)
    latencies: dict[str, list[float]] = defaultdict(list)
    ingestion: list[dict[str, Any]] = []
    unit = "turns" if shape == "turns" else "facts"
    for sample in samples:
        with tempfile.TemporaryDirectory() as tmp:
            stored = Path(tmp) / "stored"
            database = databases.new()
            base = {"data_dir": str(stored), "log_level": "WARNING", **databases.settings(database)}
            settings = load_settings(env={}, overrides=base)
            id_to_dias, seconds = await ingest(plan(sample, shape, protocol), settings, embedder)
            ingestion.append({"conversation": sample["sample_id"], unit: len(id_to_dias), "seconds": seconds})
            for n, (name, overrides) in enumerate(variants.items()):
                # Each variant on its own copy: its questions teach the store (co-access), which must not
                # carry over into the next variant.
                copy = shutil.copytree(stored, Path(tmp) / f"variant-{n}")
                variant = {"data_dir": str(copy), **databases.settings(databases.new(database) if database else None)}
                settings = load_settings(
                    env={},
                    overrides={**base, **variant, **{k: v for k, v in overrides.items() if k != REHEARSE}},
                )
                if overrides.get(REHEARSE):
                    await rehearse(sample, settings, embedder)
                found, took = await ask(sample, id_to_dias, settings, embedder)
                results[name].extend(found)
                latencies[name].extend(took)
            databases.drop_all()
        print(f"  {sample['sample_id']}: {len(id_to_dias)} {unit} stored in {seconds:.1f} s", file=sys.stderr)
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
    "cosine only, no other step": {
        **_NO_STEPS,
        "recall.keyword_weight": 0.0,
        "recall.turn_keyword_weight": 0.0,
        "recall.residual_share": 0.0,
    },
}

# Single-signal baselines beside the default (the ablations' own dicts).
BASELINES: dict[str, dict[str, Any]] = {
    "default": {},
    "cosine only": ABLATIONS["cosine only, no other step"],
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
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/locomo[-SHAPE-PROTOCOL].json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--shape", choices=["turns", "observations"], default="turns", help="what one memory is")
    parser.add_argument("--protocol", choices=["metadata", "plain"], default="metadata", help="metadata or text only")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ablate", action="store_true", help="run every configuration in ABLATIONS")
    group.add_argument("--plasticity", action="store_true", help="plasticity on and off, per category")
    group.add_argument("--baselines", action="store_true", help="default and cosine only (BASELINES)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting override")
    parser.add_argument(
        "--backend", choices=["duckdb", "postgres"], default="duckdb", help="postgres: the tests' embedded server"
    )
    args = parser.parse_args()
    shape: Shape = args.shape
    protocol: Protocol = args.protocol
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    chosen: dict[str, dict[str, Any]] = (
        ABLATIONS
        if args.ablate
        else PLASTICITY
        if args.plasticity
        else BASELINES
        if args.baselines
        else {"default": {}}
    )
    variants = {name: variant | overrides for name, variant in chosen.items()}
    suffix = "" if (shape, protocol) == ("turns", "metadata") else f"-{shape}-{protocol}"
    out: Path = args.out or Path(__file__).parent / "results" / f"locomo{suffix}.json"
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "data": str(args.data), "shape": shape, "protocol": protocol}
    report["backend"] = args.backend
    report |= anyio.run(run, variants, args.data, args.limit, shape, protocol, args.backend)
    report["seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
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
        "answers lost at default min_relevance",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, run in report["runs"].items():
        o, scores = run["scores"]["overall"], run["scores"]
        cells = [f"{o[m]:.3f}" for m in ("any@1", "any@5", "any@10", "all@5", "all@10", "mrr")]
        cells += [f"{scores[c]['any@5']:.3f}" if c in scores else "-" for c in CATEGORIES.values()]
        cells.append(f"{o['lost_at_default']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
