"""Isolation fuzz for team tokens: 500 seeded random calls by two tokens bound to two projects, through the
operations exactly as a token's tool calls reach the owner (``sharing.ops`` with ``allowed``), on the real
DuckDB store and the real model. After each call: nothing in its result names or quotes the other project's
memories, and the other project's memories and links are as they were. The two projects start linked to each
other (links a token bound to both made), so spreading activation has a way out to follow."""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from tests.backends import servers_store

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CALLS = 500
PROJECTS = {"alice": "acme/web", "bob": "beta/app"}
TOPICS = ["deploy key", "database backup", "release train", "on-call rota", "budget review", "design sync"]
TAGS = ["ops", "plan", "secret", "team"]
WEIRD = ["", "   ", "ACME/WEB", "acme/web ", "x" * 300, "beta/app/..", "default"]


@pytest.fixture
def world(settings: Settings, real_embedder: OnnxEmbedder) -> Iterator[tuple[MemoryService, MemoryStore]]:
    store = servers_store(settings.data_dir, START)
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
    """Twenty memories a project, and strong links across the two (as a token bound to both would make them)."""
    made: dict[str, list[int]] = {}
    for name, project in PROJECTS.items():
        items = [
            MemoryInput(content=f"{name} notes on the {topic}, item {i}", tags=[TAGS[i % len(TAGS)]])
            for i, topic in enumerate(TOPICS * 4)
        ][:20]
        made[name] = [r.id for r in service.remember_many(items, project=project)]
    # a_i - b_i - a_(i+1), and the same the other way: paths of two hops through the other project.
    for i, (a, b) in enumerate(zip(made["alice"], made["bob"], strict=True)):
        service.associate(a, [b, made["bob"][i - 1]], 1.0)


@dataclass
class Turn:
    """One random call by ``me``: what it may see, what it must not, and the arguments it draws."""

    rng: random.Random
    n: int
    me: str
    session_id: int
    mine: set[int]
    theirs: set[int]
    foreign_texts: list[str]
    project: str = field(init=False)

    def __post_init__(self) -> None:
        other = next(p for name, p in PROJECTS.items() if name != self.me)
        self.project = self.rng.choice([PROJECTS[self.me], PROJECTS[self.me], other, *WEIRD])

    @property
    def allowed(self) -> list[str]:
        return [PROJECTS[self.me]]

    def some_ids(self) -> list[int]:
        pool = [*self.mine, *self.theirs, 10**6 + self.rng.randrange(100)]
        return self.rng.sample(pool, k=min(len(pool), self.rng.randint(1, 3)))

    def remember(self, service: MemoryService) -> set[int]:
        item = MemoryInput(
            content=f"{self.me} adds a note on the {self.rng.choice(TOPICS)} #{self.n}", tags=[self.rng.choice(TAGS)]
        )
        used = self.some_ids() if self.rng.random() < 0.5 else None
        args = RememberManyArgs(
            memories=[item], used=used, session_id=self.session_id, project=self.project, allowed=self.allowed
        )
        return {r.id for r in REMEMBER_MANY.run(service, args)}

    def recall(self, service: MemoryService) -> set[int]:
        args = RecallArgs(
            query=self.rng.choice([*TOPICS, *self.foreign_texts[:3]]),
            k=self.rng.choice([None, 5, 50]),
            tags=self.rng.choice([None, [self.rng.choice(TAGS)]]),
            all_projects=self.rng.random() < 0.5,
            min_relevance=self.rng.choice([None, 0.0]),
            used=self.some_ids() if self.rng.random() < 0.3 else None,
            session_id=self.session_id,
            project=self.project,
            allowed=self.allowed,
        )
        result = RECALL.run(service, args)
        assert not any(text in h.content for h in result.hits for text in self.foreign_texts)
        return {h.id for h in result.hits} | {h.via.memory_id for h in result.hits if h.via}

    def associate(self, service: MemoryService) -> set[int]:
        source, *targets = [*self.some_ids(), *self.some_ids()]
        args = AssociateArgs(
            source_id=source, target_ids=targets, session_id=self.session_id, project=self.project, allowed=self.allowed
        )
        return {link.target_id for link in ASSOCIATE.run(service, args).links} | {source}

    def forget(self, service: MemoryService) -> set[int]:
        by_ids = self.rng.random() < 0.4
        args = ForgetArgs(
            ids=self.some_ids() if by_ids else None,
            tags=None if by_ids else [self.rng.choice(TAGS)],
            all_projects=self.rng.random() < 0.5,
            session_id=self.session_id,
            project=self.project,
            allowed=self.allowed,
        )
        return set(FORGET.run(service, args).ids)

    def get(self, service: MemoryService) -> set[int]:
        return {view.id for view in GET.run(service, GetArgs(ids=self.some_ids(), allowed=self.allowed))}

    def stats(self, service: MemoryService) -> set[int]:
        assert set(SCOPED_STATS.run(service, StatsArgs(allowed=self.allowed)).projects) <= set(self.allowed)
        return set()

    def refused(self, error: HebbianMemoryError, other_project: str) -> None:
        """A refusal says no more about the other project than the call itself named."""
        assert not any(text in str(error) for text in self.foreign_texts)
        told = str(error).replace(repr(self.project.strip()), "")  # quoting back what was asked is fine
        assert other_project not in told, str(error)


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
        theirs = set(before[other]["memories"])
        texts = [row.content for row in before[other]["memories"].values()]
        turn = Turn(rng, n, me, sessions[me], set(before[me]["memories"]), theirs, texts)
        calls: dict[str, Callable[[MemoryService], set[int]]] = {
            "remember": turn.remember,
            "recall": turn.recall,
            "associate": turn.associate,
            "forget": turn.forget,
            "get": turn.get,
            "stats": turn.stats,
        }
        kind = rng.choice(["remember", "recall", "recall", "recall", "associate", "forget", "get", "stats"])
        refusal: HebbianMemoryError | None = None
        seen: set[int] = set()
        try:
            seen = calls[kind](service)
        except HebbianMemoryError as e:
            refusal = e
        if refusal is not None:
            turn.refused(refusal, PROJECTS[other])
        outcomes["refused" if refusal else "ok"] += 1
        assert not seen & theirs, (n, kind, sorted(seen & theirs))
        service.flush(force=True)  # what the call learned is written now, so the comparison sees it
        assert snapshot(store, PROJECTS[other]) == before[other], (n, kind)
        before[me] = snapshot(store, PROJECTS[me])
    assert outcomes["ok"] > CALLS // 4  # most calls did something, so the checks above had something to check
    assert outcomes["refused"] > CALLS // 10
