"""Isolation fuzz for team tokens: 500 seeded random calls by two tokens bound to two projects, through the
operations exactly as a token's tool calls reach the owner (``sharing.ops`` with ``allowed``), on the real
DuckDB store and the real model. After each call: nothing in its result names or quotes the other project's
memories, and the other project's memories and links are as they were. The two projects start linked to each
other (links a token bound to both made), so spreading activation has a way out to follow."""

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.ops import (
    ASSOCIATE,
    FORGET,
    GET,
    RECALL,
    REMEMBER_MANY,
    SCOPED_STATS,
    AssociateArgs,
    ForgetArgs,
    GetArgs,
    RecallArgs,
    RememberManyArgs,
    StatsArgs,
)
from hebbian_memory.storage import Filters, MemoryStore
from tests.backends import open_duckdb

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CALLS = 500
PROJECTS = {"alice": "acme/web", "bob": "beta/app"}
TOPICS = ["deploy key", "database backup", "release train", "on-call rota", "budget review", "design sync"]
TAGS = ["ops", "plan", "secret", "team"]
WEIRD = ["", "   ", "ACME/WEB", "acme/web ", "x" * 300, "beta/app/..", "default"]


@pytest.fixture
def world(settings: Settings, real_embedder: OnnxEmbedder) -> Iterator[tuple[MemoryService, MemoryStore]]:
    store = open_duckdb(settings.data_dir / "memory.duckdb", START)
    service = MemoryService(settings, store, real_embedder, ManualClock(START))
    service.warm_up()
    yield service, store
    service.close()


def snapshot(store: MemoryStore, project: str) -> dict[str, Any]:
    """A project's memories (text, tags, metadata, importance, times, access count) and the links between them."""
    ids = sorted(store.filter_ids(Filters(project=project), 1_000_000) or [])
    rows = store.get(ids)
    links = {
        (link.source_id, link.target_id, link.weight, link.kind, link.tier, link.co_access_count)
        for m in ids
        for link in store.links_of(m)
        if link.source_id in rows and link.target_id in rows
    }
    return {"memories": {m: rows[m] for m in ids}, "links": links}


def seed(service: MemoryService) -> None:
    """Twenty memories a project, and links across the two (as a token bound to both would make them)."""
    made: dict[str, list[int]] = {}
    for name, project in PROJECTS.items():
        items = [
            MemoryInput(content=f"{name} notes on the {topic}, item {i}", tags=[TAGS[i % len(TAGS)]])
            for i, topic in enumerate(TOPICS * 4)
        ][:20]
        made[name] = [r.id for r in service.remember_many(items, project=project)]
    for a, b in zip(made["alice"], made["bob"], strict=True):
        service.associate(a, [b], 1.0)


def test_500_random_calls_by_two_tokens_never_cross_projects(world: tuple[MemoryService, MemoryStore]) -> None:
    service, store = world
    seed(service)
    rng = random.Random(20261203)
    sessions = {name: service.start_session("streamable-http", name, "1", p) for name, p in PROJECTS.items()}
    before = {name: snapshot(store, project) for name, project in PROJECTS.items()}
    outcomes = {"ok": 0, "refused": 0}
    for n in range(CALLS):
        me = rng.choice(list(PROJECTS))
        other = next(name for name in PROJECTS if name != me)
        mine, theirs = set(before[me]["memories"]), set(before[other]["memories"])
        foreign_texts = [row.content for row in before[other]["memories"].values()]

        def some_ids() -> list[int]:
            pool = [*mine, *theirs, 10**6 + rng.randrange(100)]
            return rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))

        def project() -> str:
            return rng.choice([PROJECTS[me], PROJECTS[me], PROJECTS[other], *WEIRD])

        common = {"session_id": sessions[me], "allowed": [PROJECTS[me]], "project": project()}
        kind = rng.choice(["remember", "recall", "recall", "recall", "associate", "forget", "get", "stats"])
        try:
            if kind == "remember":
                item = MemoryInput(
                    content=f"{me} adds a note on the {rng.choice(TOPICS)} #{n}", tags=[rng.choice(TAGS)]
                )
                used = some_ids() if rng.random() < 0.5 else None
                result: Any = REMEMBER_MANY.run(service, RememberManyArgs(memories=[item], used=used, **common))
                seen = {r.id for r in result}
            elif kind == "recall":
                args = RecallArgs(
                    query=rng.choice([*TOPICS, *foreign_texts[:3]]),
                    k=rng.choice([None, 5, 50]),
                    tags=rng.choice([None, [rng.choice(TAGS)]]),
                    all_projects=rng.random() < 0.5,
                    min_relevance=rng.choice([None, 0.0]),
                    used=some_ids() if rng.random() < 0.3 else None,
                    **common,
                )
                result = RECALL.run(service, args)
                seen = {h.id for h in result.hits} | {h.via.memory_id for h in result.hits if h.via}
                assert not any(text in h.content for h in result.hits for text in foreign_texts)
            elif kind == "associate":
                source, *targets = [*some_ids(), *some_ids()]
                result = ASSOCIATE.run(service, AssociateArgs(source_id=source, target_ids=targets, **common))
                seen = {link.target_id for link in result.links} | {source}
            elif kind == "forget":
                by_ids = rng.random() < 0.4
                args = ForgetArgs(
                    ids=some_ids() if by_ids else None,
                    tags=None if by_ids else [rng.choice(TAGS)],
                    all_projects=rng.random() < 0.5,
                    **common,
                )
                result = FORGET.run(service, args)
                seen = set(result.ids)
            elif kind == "get":
                result = GET.run(service, GetArgs(ids=some_ids(), allowed=[PROJECTS[me]]))
                seen = {view.id for view in result}
            else:
                result = SCOPED_STATS.run(service, StatsArgs(allowed=[PROJECTS[me]]))
                assert set(result.projects) <= {PROJECTS[me]}
                seen = set()
            outcomes["ok"] += 1
        except HebbianMemoryError as e:  # refused: it must not say more about the other project than was asked
            outcomes["refused"] += 1
            seen = set()
            assert not any(text in str(e) for text in foreign_texts)
            told = str(e).replace(repr(str(common["project"]).strip()), "")  # quoting back what was asked is fine
            assert PROJECTS[other] not in told, (kind, str(e))
        assert not seen & theirs, (n, kind, sorted(seen & theirs))
        service.flush(force=True)  # what the call learned is written now, so the comparison sees it
        assert snapshot(store, PROJECTS[other]) == before[other], (n, kind)
        before[me] = snapshot(store, PROJECTS[me])
    assert outcomes["ok"] > CALLS // 4  # most calls did something, so the checks above had something to check
    assert outcomes["refused"] > CALLS // 10
