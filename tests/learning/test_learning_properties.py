"""Properties of learning over random sequences of calls (hypothesis), with an injected clock: link weights
stay in [0, 1], a pass repeated at the same moment changes nothing, and what is forgotten never comes back."""

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import load_settings
from hebbian_memory.learning import plasticity
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage import Link
from tests.backends import BACKENDS, OpenStore, opener
from tests.helpers import FakeEmbedder

WORDS = ["apple", "river", "stone", "cloud", "ember", "frost"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("remember"), st.sampled_from(WORDS), st.integers(0, 2)),
        st.tuples(st.just("recall"), st.sampled_from(WORDS), st.integers(0, 2)),
        st.tuples(st.just("associate"), st.integers(0, 20), st.integers(0, 20)),
        st.tuples(st.just("forget"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("wait"), st.integers(0, 40), st.just(0)),
        st.tuples(st.just("consolidate"), st.just(""), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


class Run:
    """One random sequence of calls against a fresh service, with what must stay true after each."""

    def __init__(self, data_dir: Path, open_store: OpenStore) -> None:
        self.clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        overrides = {"data_dir": str(data_dir), "plasticity.recall_uses": 1, "plasticity.increment": 0.4}
        s = load_settings(env={}, overrides=overrides)
        self.service = MemoryService(s, open_store(data_dir / "m.duckdb", self.clock.now()), FakeEmbedder(), self.clock)
        self.service.warm_up()
        self.sessions = [self.service.start_session("test") for _ in range(3)]
        self.ids: list[int] = []
        self.forgotten: set[int] = set()
        self.last_pass: datetime | None = None

    def live(self) -> list[int]:
        return [m for m in self.ids if m not in self.forgotten]

    def remember(self, word: object, session: int) -> None:
        self.ids.append(self.service.remember(f"{word} note {len(self.ids)}", session_id=self.sessions[session]).id)

    def recall(self, word: object, session: int) -> None:
        hits = self.service.recall(str(word), session_id=self.sessions[session]).hits
        assert not self.forgotten & {h.id for h in hits}

    def associate(self, a: object, b: int) -> None:
        live = self.live()
        if len(live) >= 2 and live[int(str(a)) % len(live)] != live[b % len(live)]:
            self.service.associate(live[int(str(a)) % len(live)], [live[b % len(live)]], 0.9, self.sessions[0])

    def forget(self, which: object, _unused: int) -> None:
        live = self.live()
        if live:
            victim = live[int(str(which)) % len(live)]
            self.service.forget(ids=[victim])
            self.forgotten.add(victim)

    def wait(self, days: object, _unused: int) -> None:
        self.clock.advance(timedelta(days=int(str(days))))

    def consolidate(self, _word: object, _unused: int) -> None:
        self.service.consolidate()
        self.last_pass = self.clock.now()
        before = {m: sorted(self.service.links(m)) for m in self.live()}
        self.service.consolidate()  # again, at the same moment
        assert {m: sorted(self.service.links(m)) for m in self.live()} == before

    def as_of_last_pass(self, link: Link) -> float:
        if self.last_pass is None or link.updated_at >= self.last_pass:
            return link.weight
        rules = self.service._settings.plasticity  # pyright: ignore[reportPrivateUsage]
        return plasticity.decayed(link.weight, link.tier, self.last_pass - link.updated_at, rules)

    def check(self) -> None:
        for m in self.ids:
            links = self.service.links(m)
            assert all(0.0 <= w <= 1.0 for _, w in links)
            assert not self.forgotten & {other for other, _ in links}
            assert m not in self.forgotten or links == []
            # The graph recall spreads over is a cache of the stored links: the same neighbours, kinds and weights.
            # A stored weight is the weight as of its updated_at (decay writes nothing); the graph holds it as of
            # the last pass, or as stored when it changed after that pass.
            stored = {
                (link.target_id if link.source_id == m else link.source_id, link.kind): self.as_of_last_pass(link)
                for link in self.service._store.links_of(m)  # pyright: ignore[reportPrivateUsage]
            }
            cached = {(n, kind): w for n, w, kind in self.service._learning.neighbours(m)}  # pyright: ignore[reportPrivateUsage]
            assert cached.keys() == stored.keys()
            assert all(cached[key] == pytest.approx(weight, abs=1e-9) for key, weight in stored.items())


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_learning_invariants_hold_for_any_sequence_of_calls(backend: str, ops: list[tuple[str, object, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), opener(backend))
        try:
            for op, arg, number in ops:
                getattr(run, op)(arg, number)
                run.check()
        finally:
            run.service.close()
