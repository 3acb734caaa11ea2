"""Recalls read side by side: one held inside ranking does not hold up another, and a write waits until the
recalls reading have finished, so what they return is one consistent state. Real threads, a real DuckDB file;
the embedder holds the first recall inside its ranking (the residual embedding) until the test lets it go on."""

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.models import RecallResult
from hebbian_memory.service.locking import ReadWriteLock
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from tests.helpers import FakeEmbedder

# How long a thread gets to finish what it can finish at once: only a failure waits this long.
WAIT_S = 20.0
HOLD_S = 3 * WAIT_S  # longer: a failed test lets its held recall go on before this runs out


class HoldingEmbedder(FakeEmbedder):
    """Once ``armed``, holds the first ranking that embeds (a recall's residual query) until ``go_on``."""

    def __init__(self) -> None:
        self.armed = False
        self.inside = threading.Event()  # a ranking is held
        self.go_on = threading.Event()
        self._taken = threading.Lock()
        self._held = False

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        with self._taken:
            hold, self._held = self.armed and not self._held, self._held or self.armed
        if hold:
            self.inside.set()
            if not self.go_on.wait(HOLD_S):
                raise TimeoutError("the test never let the held recall go on")
        return super().embed_together(texts)


@pytest.fixture
def embedder() -> HoldingEmbedder:
    return HoldingEmbedder()


@pytest.fixture
def service(settings: Settings, embedder: HoldingEmbedder) -> Iterator[MemoryService]:
    clock = ManualClock(datetime(2025, 6, 1, 12, 0, tzinfo=UTC))
    svc = MemoryService(settings, Store.open(settings.data_dir / "memory.duckdb", clock.now()), embedder, clock)
    svc.warm_up()
    yield svc
    embedder.go_on.set()  # a failed test leaves no recall held
    svc.close()


def in_thread(call: Callable[[], RecallResult | object], out: list[object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread


def held_recall(service: MemoryService, embedder: HoldingEmbedder, query: str, out: list[object]) -> threading.Thread:
    """A recall in its own thread, held inside its ranking (it has fetched its candidates and their texts)."""
    embedder.armed = True
    thread = in_thread(lambda: service.recall(query, min_relevance=0), out)
    assert embedder.inside.wait(WAIT_S), "the recall never reached its ranking"
    return thread


def test_a_recall_held_inside_its_ranking_does_not_hold_up_another(
    service: MemoryService, embedder: HoldingEmbedder
) -> None:
    cat = service.remember("the cat sat on the mat").id
    dog = service.remember("a dog ran across the park").id
    first: list[object] = []
    held = held_recall(service, embedder, "where did the cat sleep", first)

    second: list[object] = []
    other = in_thread(lambda: service.recall("which dog ran in the park", min_relevance=0), second)
    other.join(WAIT_S)
    assert not other.is_alive(), "the second recall waited for the first"
    assert held.is_alive()  # the first is still held
    assert not first
    assert isinstance(second[0], RecallResult)
    assert second[0].hits[0].id == dog

    embedder.go_on.set()
    held.join(WAIT_S)
    assert isinstance(first[0], RecallResult)
    assert first[0].hits[0].id == cat


def test_a_write_waits_for_the_recalls_reading_so_they_see_one_state(
    service: MemoryService, embedder: HoldingEmbedder
) -> None:
    cat = service.remember("the cat sat on the mat").id
    service.remember("a dog ran across the park")
    recalled: list[object] = []
    held = held_recall(service, embedder, "where did the cat sleep", recalled)

    forgot: list[object] = []
    writer = in_thread(lambda: service.forget(ids=[cat]), forgot)
    # A negative: the forget must not get in while the recall reads. It is given a second to (a wrong lock lets
    # it finish in milliseconds); with the right one it waits for as long as the recall is held.
    writer.join(1.0)
    assert writer.is_alive(), "the forget changed the memory under a recall reading it"
    assert not forgot

    embedder.go_on.set()
    held.join(WAIT_S)
    writer.join(WAIT_S)
    assert not held.is_alive()
    assert not writer.is_alive()
    result = recalled[0]
    assert isinstance(result, RecallResult)
    # Ranked, fetched and returned whole, from before the forget.
    assert result.hits[0].id == cat
    assert result.hits[0].content == "the cat sat on the mat"
    assert cat not in [h.id for h in service.recall("where did the cat sleep", min_relevance=0).hits]


def test_readers_share_the_lock_and_its_writer_may_take_it_again_and_read() -> None:
    lock = ReadWriteLock()
    reading, done = threading.Event(), threading.Event()

    def reader() -> None:
        with lock.shared():
            reading.set()
            done.wait(WAIT_S)

    other = threading.Thread(target=reader, daemon=True)
    other.start()
    assert reading.wait(WAIT_S)
    with lock.shared(), lock.shared():  # beside the other reader, and again inside its own read
        pass
    done.set()
    other.join(WAIT_S)
    with lock, lock, lock.shared():
        pass


def test_a_reader_asking_to_write_is_refused_not_left_waiting_for_itself() -> None:
    lock = ReadWriteLock()
    with lock.shared(), pytest.raises(RuntimeError, match="wait for itself"):
        lock.acquire()
    with lock:  # nothing was left held
        pass
