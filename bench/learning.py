"""Learning that pays (issue 20): does a store get better the more an assistant uses it? All through the real MCP
tools, each store in its own data dir. The server's clock is a manual one: stores are written at a fixed instant
(EPOCH), and the streams then move it 30 s a call and 10 min between MCP sessions, so what a run gives depends
neither on how long it takes nor on when it runs.

1. Use stream. Each LoCoMo development conversation is stored as bench/locomo.py stores it with the plain protocol
   ("Speaker: text", the session date as event time, no metadata). Its questions (category 5 left out) are then
   asked in their order through `recall` (k=10, min_relevance 0, so that ranking is scored on its own), ten to an
   MCP session. After each recall a simulated assistant decides what it used: oracle, the hits that are evidence
   turns of that question; sloppy, its top two hits whatever they are; none, nothing. The report goes as
   `used=[...]` on the session's next recall; the tenth question's report has no next recall and is dropped (as
   an assistant's last use in a conversation would be). Modes oracle, sloppy and none run with learning on
   (default settings); off runs with plasticity.enabled = false and reports nothing. Every mode on its own copy
   of the stored conversation. Scored: any@1/5/10 for the first and the second half of each conversation's
   questions, pooled over conversations, and for the second half also the questions none of whose evidence turns
   was among the oracle's reports sent during the first half (the same questions for every mode: the oracle
   run's; without an oracle run, the off run's hits decide what an oracle would have sent).
2. Set completion (bench/learning_sets.py): 20 groups of 3-5 word-disjoint memories among 150 filler notes, each
   group used together in 3 sessions; then a probe per member; and 20 filler probes whose top 5 should not move.
3. Scale: the first conversation's store padded with filler notes (bench/filler.py) to 10,000 memories, the
   oracle stream run on it (none when the server lacks `used`), then link counts (read from the closed DuckDB file,
   before and after one consolidation pass, which is where the caps are enforced) and this process's RSS (the
   server runs in it), against plasticity.max_links and max_links_per_memory.

Whether the server takes `used` is read from the recall tool's input schema at the start: the server of
2026-12-02 silently ignores arguments it does not know, so sending `used` to it would quietly run "none". Modes
that need it are then reported as not supported by this server, and the set completion runs without the report.

    uv run --extra test python -m bench.learning                        # everything -> bench/results/learning.json
    uv run --extra test python -m bench.learning --modes none off --conversations 2 --skip-scale

Measured 2026-12-03 on a 2-core AMD EPYC VM shared with a test run for part of it, all four modes: 372 s in all
(storing the five conversations 76 s, each stream 4-20 s, set completion and the 10,000-memory run about 2.5 min).
`--set KEY=VALUE` (repeatable) changes a setting in every server of the run, for ablations.
"""

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import duckdb
from mcp import Client
from tests.helpers import structured

from bench import learning_sets
from bench.filler import notes
from bench.latency import MODEL_CACHE
from bench.locomo import CATEGORIES, DATA, KS, evidence_ids, ingest, known_turns, machine, plan
from bench.recall_rss import rss_mb
from hebbian_memory.app.wiring import build_node
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.sharing.ops import CONSOLIDATE, NoArgs
from hebbian_memory.transport.app import build_server

Mode = Literal["oracle", "sloppy", "none", "off"]
MODES: tuple[Mode, ...] = ("oracle", "sloppy", "none", "off")
REPORTING: frozenset[Mode] = frozenset({"oracle", "sloppy"})  # the modes that send `used`
PER_SESSION = 10
STEP = learning_sets.STEP
BREAK = learning_sets.BREAK
SCALE = 10_000
EPOCH = datetime(2026, 3, 2, 9, tzinfo=UTC)  # the stores are written at this time
START = EPOCH + timedelta(hours=1)  # and the streams begin then
RESULTS = Path(__file__).with_name("results") / "learning.json"
UNSUPPORTED = "not supported by this server"
# Settings changed for an ablation (--set key=value), over the defaults, in every server this run starts.
ABLATION: dict[str, object] = {}


@dataclass
class Asked:
    """One question of a stream as asked in one mode."""

    key: tuple[str, int]  # conversation, place among its asked questions
    half: int  # 1 or 2
    evidence: set[str]
    ranked: list[set[str]]  # per hit, best first: its turns
    oracle: set[str] = field(default_factory=set[str])  # turns of the hits that are evidence (the oracle's report)
    last_in_session: bool = False  # its report has no next recall to go with


def report(
    mode: Mode, hits: Sequence[Mapping[str, Any]], evidence: set[str], turns: Mapping[int, set[str]]
) -> list[int]:
    """The ids the simulated assistant says it used."""
    if mode == "oracle":
        return [h["id"] for h in hits if turns.get(h["id"], set()) & evidence]
    if mode == "sloppy":
        return [h["id"] for h in hits[:2]]
    return []


def settings_for(data_dir: Path, mode: Mode) -> Settings:
    """The defaults (learning off for "off"), the clock stopped at EPOCH where no clock is handed to the server
    (storing): what a run gives must not depend on when it runs (recall's scores do, a little, on the time)."""
    overrides = {"data_dir": str(data_dir), "log_level": "WARNING", "plasticity.enabled": mode != "off"}
    return load_settings(env={}, overrides=ABLATION | overrides | {"fixed_time": EPOCH.isoformat()})


async def stream(
    sample: Mapping[str, Any],
    turns: Mapping[int, set[str]],
    settings: Settings,
    embedder: Embedder,
    clock: ManualClock,
    mode: Mode,
) -> list[Asked]:
    """The conversation's questions in order, ten to an MCP session, each use report sent with the next recall."""
    known = known_turns(sample)
    questions = [qa for qa in sample["qa"] if qa["category"] in CATEGORIES]
    middle = len(questions) // 2
    asked: list[Asked] = []
    for start in range(0, len(questions), PER_SESSION):
        async with Client(build_server(settings, clock=clock, embedder=embedder)) as client:
            pending: list[int] = []
            for place, qa in enumerate(questions[start : start + PER_SESSION], start):
                clock.advance(STEP)
                arguments: dict[str, Any] = {"query": qa["question"], "k": 10, "min_relevance": 0}
                if pending:
                    arguments["used"] = pending
                hits = structured(await client.call_tool("recall", arguments))["hits"]
                evidence = evidence_ids(qa.get("evidence", []), known)
                row = Asked((sample["sample_id"], place), 1 if place < middle else 2, evidence, [])
                row.ranked = [turns.get(h["id"], set()) for h in hits]
                row.oracle = set[str]().union(*(t for t in row.ranked if t & evidence))
                asked.append(row)
                pending = report(mode, hits, evidence, turns)
            asked[-1].last_in_session = True
        clock.advance(BREAK)
    return asked


def unseen(asked: Iterable[Asked]) -> set[tuple[str, int]]:
    """Second-half questions none of whose evidence turns an oracle reported (and sent) in the first half."""
    rows = list(asked)
    taught: dict[str, set[str]] = {}
    for r in rows:
        if r.half == 1 and not r.last_in_session:
            taught.setdefault(r.key[0], set()).update(r.oracle)
    return {r.key for r in rows if r.half == 2 and not r.evidence & taught.get(r.key[0], set())}


def rates(rows: Iterable[Asked]) -> dict[str, float]:
    """any@k over the questions that have evidence."""
    scored = [r for r in rows if r.evidence]
    out: dict[str, float] = {"n": len(scored)}
    for k in KS:
        hits = sum(any(t & r.evidence for t in r.ranked[:k]) for r in scored)
        out[f"any@{k}"] = round(hits / len(scored), 4) if scored else float("nan")
    return out


def scores(asked: Mapping[Mode, list[Asked]]) -> dict[str, Any]:
    """Per mode: the halves, the unseen-evidence subset of the second half, and differences to off in points."""
    definer: Mode = "oracle" if "oracle" in asked else "off"
    subset = unseen(asked[definer]) if definer in asked else set[tuple[str, int]]()
    out: dict[str, Any] = {"unseen_defined_by": definer, "modes": {}}
    for mode, rows in asked.items():
        out["modes"][mode] = {
            "first": rates(r for r in rows if r.half == 1),
            "second": rates(r for r in rows if r.half == 2),
            "second_unseen": rates(r for r in rows if r.key in subset),
        }
    # Against off (the targets), and against none: what the use reports add to learning without them.
    for base in ("off", "none"):
        if base in out["modes"]:
            ref = out["modes"][base]
            for parts in out["modes"].values():
                parts[f"points_vs_{base}"] = {
                    part: {f"any@{k}": round(100 * (parts[part][f"any@{k}"] - ref[part][f"any@{k}"]), 2) for k in KS}
                    for part in ("first", "second", "second_unseen")
                }
    return out


async def supports_use(embedder: Embedder) -> bool:
    """Whether this server's recall takes `used` (read from its input schema: it ignores unknown arguments)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with Client(build_server(settings_for(Path(tmp), "none"), embedder=embedder)) as client:
            tools = (await client.list_tools()).tools
    recall = next(t for t in tools if t.name == "recall")
    return "used" in recall.input_schema.get("properties", {})


async def use_streams(
    samples: Sequence[Mapping[str, Any]], modes: Sequence[Mode], embedder: Embedder
) -> tuple[dict[Mode, list[Asked]], list[dict[str, Any]]]:
    asked: dict[Mode, list[Asked]] = {mode: [] for mode in modes}
    ingestion: list[dict[str, Any]] = []
    for sample in samples:
        with tempfile.TemporaryDirectory() as tmp:
            stored = Path(tmp) / "stored"
            turns, seconds = await ingest(plan(sample, "turns", "plain"), settings_for(stored, "none"), embedder)
            ingestion.append({"conversation": sample["sample_id"], "turns": len(turns), "seconds": round(seconds, 1)})
            for mode in modes:
                copy = shutil.copytree(stored, Path(tmp) / mode)
                began = time.perf_counter()
                rows = await stream(sample, turns, settings_for(copy, mode), embedder, ManualClock(START), mode)
                asked[mode] += rows
                took = time.perf_counter() - began
                print(f"  {sample['sample_id']} {mode}: {len(rows)} questions in {took:.0f} s", file=sys.stderr)
    return asked, ingestion


def link_counts(db: Path) -> dict[str, Any]:
    """Links in all, per kind, and the most at one memory, from the closed database."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        total = conn.execute("SELECT count(*) FROM associations").fetchone()
        kinds = conn.execute("SELECT kind, count(*) FROM associations GROUP BY kind ORDER BY kind").fetchall()
        most = conn.execute(
            "SELECT max(n) FROM (SELECT id, count(*) AS n FROM (SELECT source_id AS id FROM associations "
            "UNION ALL SELECT target_id FROM associations) GROUP BY id)"
        ).fetchone()
        memories = conn.execute("SELECT count(*) FROM memories").fetchone()
    finally:
        conn.close()
    return {
        "memories": int(memories[0]) if memories else 0,
        "links": int(total[0]) if total else 0,
        "links_by_kind": {str(k): int(n) for k, n in kinds},
        "max_links_at_one_memory": int(most[0]) if most and most[0] is not None else 0,
    }


async def scale(sample: Mapping[str, Any], mode: Mode, embedder: Embedder, tmp: Path) -> dict[str, Any]:
    """One conversation padded with filler to SCALE memories, one stream over it, links and RSS afterwards."""
    data_dir = tmp / "scale"
    settings = settings_for(data_dir, mode)
    turns, _ = await ingest(plan(sample, "turns", "plain"), settings, embedder)
    fillers = [text for text, _ in notes(SCALE - len(turns), seed=10)]
    async with Client(build_server(settings, embedder=embedder)) as client:
        for start in range(0, len(fillers), 1000):
            memories = [{"content": text} for text in fillers[start : start + 1000]]
            structured(await client.call_tool("remember_many", {"memories": memories}))
    print(f"  scale: {len(turns) + len(fillers)} memories stored", file=sys.stderr)
    clock = ManualClock(START)
    asked = await stream(sample, turns, settings, embedder, clock, mode)
    rss = rss_mb()
    after_stream = link_counts(data_dir / "memory.duckdb")
    async with build_node(settings, clock=clock, embedder=embedder).running() as node:
        await node.call(CONSOLIDATE, NoArgs())
    rules = settings.plasticity
    return {
        "conversation": sample["sample_id"],
        "mode": mode,
        "questions": rates(asked),
        "after_stream": after_stream,
        "after_consolidation_pass": link_counts(data_dir / "memory.duckdb"),
        "max_links": rules.max_links,
        "max_links_per_memory": rules.max_links_per_memory,
        "rss_mb_after_stream": round(rss, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def targets(stream_scores: Mapping[str, Any], sets: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and pass, fail or not run."""
    modes: Mapping[str, Any] = stream_scores["modes"]

    def diff(mode: str, part: str, k: int) -> float | None:
        return modes[mode]["points_vs_off"][part][f"any@{k}"] if mode in modes and "off" in modes else None

    checks: list[tuple[str, float | None, bool | None]] = []

    def check(name: str, value: float | None, ok: bool) -> None:
        checks.append((name, value, None if value is None else ok))

    v = diff("oracle", "second", 1)
    check("oracle, 2nd half any@1 >= +8 points", v, v is not None and v >= 8)
    v = diff("oracle", "second", 5)
    check("oracle, 2nd half any@5 >= +5 points", v, v is not None and v >= 5)
    for k in KS:
        v = diff("oracle", "second_unseen", k)
        check(f"oracle, 2nd half unseen evidence any@{k} >= -1 point", v, v is not None and v >= -1)
    for mode in ("sloppy", "none"):
        for part in ("first", "second"):
            for k in KS:
                v = diff(mode, part, k)
                check(f"{mode}, {part} half any@{k} within 0.5 of off", v, v is not None and abs(v) <= 0.5)
    for mode in ("oracle",):  # sloppy and none: their first half is checked above
        for k in KS:
            v = diff(mode, "first", k)
            check(f"{mode}, first half any@{k} within 0.5 of off", v, v is not None and abs(v) <= 0.5)
    if sets is not None and sets["used_sent"]:
        check(
            "set completion: groups passed >= 90%",
            100 * sets["after"]["groups_passed"],
            sets["after"]["groups_passed"] >= 0.9,
        )
        check("set completion: filler top 5 unchanged", sets["filler_top5_changed"], sets["filler_top5_changed"] == 0)
    else:
        checks.append(("set completion: groups passed >= 90%", None, None))
    return [
        {"target": name, "value": value, "result": "not run" if ok is None else "pass" if ok else "FAIL"}
        for name, value, ok in checks
    ]


def _cell(parts: Mapping[str, Any], part: str, k: int) -> str:
    value = f"{parts[part][f'any@{k}']:.3f}"
    points = parts.get("points_vs_off", {}).get(part, {}).get(f"any@{k}")
    return value if points is None or "points_vs_off" not in parts else f"{value} ({points:+.1f})"


def stream_table(report: Mapping[str, Any]) -> str:
    """Markdown: any@k per mode for each half and the unseen-evidence subset, points against off in brackets."""
    parts = {"first": "1st half", "second": "2nd half", "second_unseen": "2nd half, evidence not used before"}
    head = ["mode", *(f"{name} any@{k}" for name in parts.values() for k in KS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    stream_scores = report["stream"]["scores"]
    for mode in report["stream"]["modes"]:
        if mode not in stream_scores["modes"]:
            lines.append(f"| {mode} | {UNSUPPORTED} |" + " |" * (len(head) - 2))
            continue
        run = stream_scores["modes"][mode]
        lines.append(f"| {mode} | " + " | ".join(_cell(run, part, k) for part in parts for k in KS) + " |")
    some = next(iter(stream_scores["modes"].values()), None)
    if some is not None:
        n = " / ".join(str(some[part]["n"]) for part in parts)
        lines.append(
            f"\nQuestions scored (1st half / 2nd half / not used before): {n}; the last set is the one "
            f"the {stream_scores['unseen_defined_by']} run defines."
        )
    return "\n".join(lines)


def targets_table(report: Mapping[str, Any]) -> str:
    lines = ["| target | measured | result |", "|---|---|---|"]
    for t in report["targets"]:
        value = (
            "-" if t["value"] is None else f"{t['value']:+.2f}" if isinstance(t["value"], float) else str(t["value"])
        )
        lines.append(f"| {t['target']} | {value} | {t['result']} |")
    return "\n".join(lines)


def sets_table(sets: Mapping[str, Any]) -> str:
    keys = ("groups_passed", "probes_passed", "others_in_top5", "probe_finds_its_member")
    lines = [
        "| set completion | groups passed | probes passed | other members in the top 5 | probe finds its member |",
        "|---|---|---|---|---|",
    ]
    for when in ("before", "after"):
        lines.append(f"| {when} learning | " + " | ".join(f"{sets[when][k]:.3f}" for k in keys) + " |")
    lines.append(
        f"\n{sets['groups']} groups ({sets['members']} memories), {sets['fillers']} filler notes, {sets['rounds']} "
        f"rounds; use reported: {'yes' if sets['used_sent'] else 'no (' + UNSUPPORTED + ')'}; aim queries that "
        f"found their member: {sets['aims_found_in_top10']:.3f}; filler probes whose top 5 changed: "
        f"{sets['filler_top5_changed']} of {sets['filler_probes']} "
        f"(order changed: {sets['filler_top5_order_changed']})."
    )
    return "\n".join(lines)


def scale_table(s: Mapping[str, Any]) -> str:
    a, b = s["after_stream"], s["after_consolidation_pass"]
    q = s["questions"]
    return "\n".join(
        [
            "| memories | stream | links (after stream / after a pass) | most at one memory | caps (all / per memory) "
            "| RSS after stream | peak RSS | any@1 / @5 / @10 |",
            "|---|---|---|---|---|---|---|---|",
            f"| {a['memories']:,} | {s['mode']} | {a['links']:,} / {b['links']:,} | {a['max_links_at_one_memory']} / "
            f"{b['max_links_at_one_memory']} | {s['max_links']:,} / {s['max_links_per_memory']} | "
            f"{s['rss_mb_after_stream']:.0f} MB | {s['peak_rss_mb']:.0f} MB | "
            f"{q['any@1']:.3f} / {q['any@5']:.3f} / {q['any@10']:.3f} |",
        ]
    )


def tables(report: Mapping[str, Any]) -> str:
    out = [stream_table(report), targets_table(report)]
    if report.get("sets"):
        out.append(sets_table(report["sets"]))
    if report.get("scale"):
        out.append(scale_table(report["scale"]))
    return "\n\n".join(out)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    samples = json.loads(Path(args.data).read_text())[: args.conversations]
    embedder = OnnxEmbedder("default", MODEL_CACHE)
    embedder.load()
    use = await supports_use(embedder)
    chosen: list[Mode] = [m for m in MODES if m in args.modes]
    runnable: list[Mode] = [m for m in chosen if use or m not in REPORTING]
    print(f"server takes `used`: {use}; modes run: {', '.join(runnable)}", file=sys.stderr)
    asked, ingestion = await use_streams(samples, runnable, embedder)
    report: dict[str, Any] = {"machine": machine(), "data": str(args.data), "used_supported": use}
    report["settings_changed"] = dict(ABLATION)
    stream_report: dict[str, Any] = {
        "modes": {m: ("run" if m in runnable else UNSUPPORTED) for m in chosen},
        "conversations": [s["sample_id"] for s in samples],
        "ingestion": ingestion,
        "scores": scores(asked),
    }
    report["stream"] = stream_report
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sets:
            sets_clock = ManualClock(EPOCH)
            report["sets"] = await learning_sets.run(Path(tmp), embedder, sets_clock, use, ABLATION)
        if not args.skip_scale:
            report["scale"] = await scale(samples[0], "oracle" if use else "none", embedder, Path(tmp))
    report["targets"] = targets(stream_report["scores"], report.get("sets"))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--conversations", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--skip-sets", action="store_true", help="leave out the set-completion scenario")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the 10,000-memory run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for an ablation, as in the config"
    )
    args = parser.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        ABLATION[key] = json.loads(value)
    started = time.perf_counter()
    report = anyio.run(run, args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(tables(report))
    print(f"\n{report['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
