"""Searching inside PostgreSQL beside searching the server's caches, on the development sets (issue 22).

Every server ranks through its caches (the vector index and the BM25F keyword index, kept current from the
change log); the database has an HNSW index and a weighted tsvector with GIN of its own. This measures, per
question, in its own project of one shared database (LoCoMo turns as a plain client stores them, speaker in
the text; LoCoMo observations; the paraphrase set: 11 projects, beside a twelfth of --filler everyday notes, so
each is a small part of a large store), what each way finds among its first 10 and first 50 (the candidates
recall scores: recall.candidates):

- keyword: the database's ``ts_rank_cd`` over the stored ``simple`` tsvector (GIN), over an ``english``
  tsvector (stems, stop words; built per query, no index), and the server's BM25F (``Catalog``);
- dense: pgvector under the project filter with ``hnsw.iterative_scan`` off and ``relaxed_order`` (how many
  queries get fewer than 50), as the planner chooses (it may sort a small project's rows exactly) and with the
  HNSW index forced (sorting off), beside exact cosine over the project (what the server's cache does for a
  project of up to ``recall.exact_filter_limit`` memories). The HNSW index is partial (one per dimension), so a
  query names the dimension (``vector_dims(embedding) = 384``) or the planner cannot use it.

hit@10: a gold memory among the first 10; recall@50: the share of gold memories among the first 50.

    uv run --extra test python -m bench.dbsearch --filler 50000     # -> bench/results/dbsearch.json
"""

import argparse
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString, cast

import numpy as np
import numpy.typing as npt
import psycopg
from tests import postgres

from bench import filler, locomo
from bench.paraphrase import DATA as PARAPHRASE
from bench.scoring import machine
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.inputs import content_hash
from hebbian_memory.retrieval.catalog import Catalog
from hebbian_memory.storage import Filters, NewMemory
from hebbian_memory.storage.postgres import PostgresStore

_SESSIONS = itertools.count(1)  # one session per episode, across every project
LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev" / "locomo_dev.json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WIDE = 50  # recall.candidates


@dataclass
class Question:
    text: str
    gold: set[int]  # memory ids


@dataclass
class Shape:
    name: str
    projects: list[str] = field(default_factory=list[str])
    questions: list[tuple[str, Question]] = field(default_factory=list[tuple[str, Question]])  # (project, question)


def _store(
    store: PostgresStore, embedder: OnnxEmbedder, project: str, episodes: Sequence[tuple[datetime, list[str]]]
) -> list[int]:
    """Each episode's texts as one session's memories, in order; their ids."""
    ids: list[int] = []
    for when, texts in episodes:
        if not texts:
            continue
        session = next(_SESSIONS)
        vectors = embedder.embed(texts)
        rows = [
            NewMemory(t, content_hash(f"{len(ids) + n}:{t}"), (), {}, 0.5, when, v, embedder.model_id, session, project)
            for n, (t, v) in enumerate(zip(texts, vectors, strict=True))
        ]
        ids += store.insert(rows, NOW)
    return ids


def load_locomo(store: PostgresStore, embedder: OnnxEmbedder) -> list[Shape]:
    turns, facts = Shape("locomo turns (plain)"), Shape("locomo observations")
    for n, sample in enumerate(json.loads(LOCOMO.read_text())):
        known = locomo.known_turns(sample)
        qa = [(q["question"], locomo.evidence_ids(q["evidence"], known)) for q in sample["qa"] if q["category"] != 5]
        # Turns: one memory per turn, "speaker: text" (and an image's caption), as a plain client sends them.
        project = f"locomo-{n}-turns"
        sessions = locomo.sessions(sample["conversation"])
        texts = [(when, [locomo.turn_arguments(t, "plain")["content"] for t in ts]) for when, ts in sessions]
        ids = _store(store, embedder, project, texts)
        tied = [locomo.dia_ids(t["dia_id"]) for _, ts in sessions for t in ts]
        turns.projects.append(project)
        for q, evidence in qa:
            gold = {i for i, t in zip(ids, tied, strict=True) if t & evidence}
            if gold:
                turns.questions.append((project, Question(q, gold)))
        # Observations: the facts the dataset derived from each session, tied to the turns they come from.
        project = f"locomo-{n}-facts"
        plan = locomo.observations(sample, "plain")
        ids = _store(store, embedder, project, [(when, [f[0]["content"] for f in fs]) for when, fs in plan])
        tied = [f[1] for _, fs in plan for f in fs]
        facts.projects.append(project)
        for q, evidence in qa:
            gold = {i for i, t in zip(ids, tied, strict=True) if t & evidence}
            if gold:
                facts.questions.append((project, Question(q, gold)))
    return [turns, facts]


def load_paraphrase(store: PostgresStore, embedder: OnnxEmbedder) -> Shape:
    data = json.loads(PARAPHRASE.read_text())
    shape = Shape("paraphrase (assistant)", ["paraphrase"])
    memories = data["memories"]
    ids = _store(store, embedder, "paraphrase", [(NOW, [m["content"] for m in memories])])
    for q in data["questions"]:
        if q["answers"]:
            shape.questions.append(("paraphrase", Question(q["q"], {ids[a] for a in q["answers"]})))
    return shape


def _or_query(text: str) -> str:
    """The question's words joined by OR (tsquery syntax); a question matches on any of them, as BM25's does."""
    return " | ".join(dict.fromkeys(re.findall(r"[a-z0-9]+", text.lower()))) or "nothing"


def _sql(text: str) -> LiteralString:
    """A statement built here from constants and the model's dimension only (no user input)."""
    return cast("LiteralString", text)


def _vec(v: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


Search = Callable[[str, Question, npt.NDArray[np.float32]], list[int]]


def searches(conn: psycopg.Connection[Any], catalog: Catalog, by_project: Mapping[str, list[int]],
             vectors: Mapping[int, npt.NDArray[np.float32]], dim: int) -> dict[str, Search]:  # fmt: skip
    def simple(project: str, q: Question, _v: npt.NDArray[np.float32]) -> list[int]:
        rows = conn.execute(
            """SELECT id FROM memories, to_tsquery('simple', %s) q WHERE project = %s AND search @@ q
               ORDER BY ts_rank_cd(search, q) DESC, id LIMIT %s""",
            [_or_query(q.text), project, WIDE],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def english(project: str, q: Question, _v: npt.NDArray[np.float32]) -> list[int]:
        rows = conn.execute(
            """SELECT id FROM (SELECT id, to_tsvector('english', content) AS t FROM memories WHERE project = %s) m,
                   to_tsquery('english', %s) q WHERE t @@ q ORDER BY ts_rank_cd(t, q) DESC, id LIMIT %s""",
            [project, _or_query(q.text), WIDE],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def bm25f(project: str, q: Question, _v: npt.NDArray[np.float32]) -> list[int]:
        return [i for i, _ in catalog.lexical.search(q.text, WIDE, only=by_project[project])]

    def hnsw(mode: str, forced: bool = False) -> Search:
        def search(project: str, _q: Question, v: npt.NDArray[np.float32]) -> list[int]:
            conn.execute(_sql(f"SET hnsw.iterative_scan = {mode}"))
            # The planner sorts a selective project's rows exactly; with sorting off it must walk the HNSW graph.
            conn.execute(_sql(f"SET enable_sort = {'off' if forced else 'on'}"))
            rows = conn.execute(
                _sql(f"""WITH nearest AS MATERIALIZED (
                        SELECT id, embedding::vector({dim}) <=> %s::vector({dim}) AS d FROM memories
                        WHERE project = %s AND vector_dims(embedding) = {dim}
                        ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s)
                    SELECT id FROM nearest ORDER BY d"""),
                [_vec(v), project, _vec(v), WIDE],
            ).fetchall()
            conn.execute("SET enable_sort = on")  # the other searches plan as usual
            return [int(r[0]) for r in rows]

        return search

    def exact(project: str, _q: Question, v: npt.NDArray[np.float32]) -> list[int]:
        ids = by_project[project]
        cosines = np.stack([vectors[i] for i in ids]) @ v
        return [ids[i] for i in np.argsort(-cosines, kind="stable")[:WIDE]]

    return {
        "keyword: tsvector simple (GIN)": simple,
        "keyword: tsvector english": english,
        "keyword: BM25F (server)": bm25f,
        "dense: planner's choice, iterative scan off": hnsw("off"),
        "dense: planner's choice, iterative scan relaxed_order": hnsw("relaxed_order"),
        "dense: HNSW forced, iterative scan off": hnsw("off", forced=True),
        "dense: HNSW forced, iterative scan relaxed_order": hnsw("relaxed_order", forced=True),
        "dense: exact cosine (server, per project)": exact,
    }


def measure(shape: Shape, search: Search, embedder: OnnxEmbedder) -> dict[str, Any]:
    hit10: list[bool] = []
    recall50: list[float] = []
    times: list[float] = []
    short = 0
    query_vectors = embedder.embed([q.text for _, q in shape.questions])
    for (project, q), v in zip(shape.questions, query_vectors, strict=True):
        started = time.perf_counter()
        found = search(project, q, v)
        times.append((time.perf_counter() - started) * 1000)
        hit10.append(bool(set(found[:10]) & q.gold))
        recall50.append(len(set(found) & q.gold) / len(q.gold))
        short += len(found) < WIDE
    return {
        "n": len(shape.questions),
        "hit@10": round(statistics.fmean(hit10), 4),
        "recall@50": round(statistics.fmean(recall50), 4),
        "fewer_than_50": short,
        "p50_ms": round(statistics.median(times), 2),
    }


def load_filler(store: PostgresStore, embedder: OnnxEmbedder, n: int) -> None:
    notes = [text for text, _ in filler.notes(n)]
    for start in range(0, n, 1000):
        _store(store, embedder, "filler", [(NOW, notes[start : start + 1000])])


def run(fill: int) -> dict[str, Any]:
    embedder = OnnxEmbedder("default", Path(tempfile.mkdtemp()) / "models")
    embedder.load()
    name = postgres.create_database()
    url = postgres.database_url(name)
    store = PostgresStore.open(url, NOW, embedder.dim)
    try:
        started = time.perf_counter()
        shapes = [*load_locomo(store, embedder), load_paraphrase(store, embedder)]
        load_filler(store, embedder, fill)
        loaded = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            catalog = Catalog(load_settings(env={}, overrides={"data_dir": tmp}), store)
        for docs in store.iter_documents(5000):
            catalog.index_documents(docs)
        ids = store.all_ids().tolist()
        vectors = dict(zip(ids, store.embeddings(ids, embedder.dim), strict=True))
        by_project: dict[str, list[int]] = {}
        for shape in shapes:
            for project in shape.projects:
                by_project[project] = sorted(store.filter_ids(Filters(project=project), len(ids)) or [])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE memories")

            def explain(sort: str) -> list[str]:
                """The plan of a dense search in the paraphrase project, with the query vector left out."""
                conn.execute(_sql(f"SET enable_sort = {sort}"))
                rows = conn.execute(
                    _sql(f"""EXPLAIN SELECT id FROM memories
                        WHERE project = 'paraphrase' AND vector_dims(embedding) = {embedder.dim}
                        ORDER BY embedding::vector({embedder.dim}) <=> %s::vector({embedder.dim}) LIMIT 50"""),
                    [_vec(vectors[ids[0]])],
                ).fetchall()
                return [re.sub(r"'\[[^]]*\]'", "'[query]'", r[0]) for r in rows]

            plans = {"planner's choice": explain("on"), "HNSW forced": explain("off")}
            ways = searches(conn, catalog, by_project, vectors, embedder.dim)
            results = {
                shape.name: {way: measure(shape, search, embedder) for way, search in ways.items()} for shape in shapes
            }
        return {
            "memories": len(ids),
            "projects": len(by_project),
            "seconds_to_load": round(loaded, 1),
            "filler": fill,
            "dense_plans": plans,
            "shapes": results,
        }
    finally:
        store.close()
        postgres.drop_database(name)


def table(report: Mapping[str, Any]) -> str:
    lines = ["| shape | search | hit@10 | recall@50 | fewer than 50 | p50 ms |", "|---|---|---|---|---|---|"]
    for shape, ways in report["shapes"].items():
        for way, r in ways.items():
            lines.append(
                f"| {shape} (n={r['n']}) | {way} | {r['hit@10']:.3f} | {r['recall@50']:.3f} | {r['fewer_than_50']} "
                f"| {r['p50_ms']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dbsearch.json")
    parser.add_argument("--filler", type=int, default=50_000, help="everyday notes in a project of their own")
    args = parser.parse_args()
    postgres.server_uri()
    started = time.perf_counter()
    try:
        report = {"machine": machine(), "postgres": "18.6, pgvector 0.8.6", **run(args.filler)}
    finally:
        postgres.shutdown()
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"({report['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
