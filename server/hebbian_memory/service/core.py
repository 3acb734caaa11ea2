"""Core: what every memory operation shares, handed by MemoryService to the classes that carry them out."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hebbian_memory.clock import Clock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder
from hebbian_memory.errors import StorageFaultError
from hebbian_memory.learning.feedback import Feedback
from hebbian_memory.learning.graph import Learning, Pair
from hebbian_memory.redaction import Redactor
from hebbian_memory.retrieval.catalog import Catalog
from hebbian_memory.retrieval.source import RecallSource
from hebbian_memory.retrieval.vectors import VectorIndex
from hebbian_memory.service.locking import ReadWriteLock
from hebbian_memory.storage import MemoryStore

__all__ = ["Core"]


@dataclass(frozen=True, slots=True)
class Core:
    """The database, the caches beside it (what recall reads through ``source``), the lock that orders changes
    to both (recalls share it), and the warm-up gate."""

    settings: Settings
    store: MemoryStore
    embedder: Embedder
    clock: Clock
    catalog: Catalog
    source: RecallSource  # recall's view of the caches; told of every memory stored or forgotten
    learning: Learning
    feedback: Feedback  # use reports: recall's used and misled, remember's used
    redactor: Redactor
    lock: ReadWriteLock  # writes hold it exclusively (``with lock:``), recalls shared
    wait_ready: Callable[[], VectorIndex]  # blocks until the warm-up is done; the vector index it opened
    catch_up: Callable[[], None]  # the caches take in what other servers sharing the database changed (peers)

    def learn(self, pairs: list[Pair], now: datetime) -> None:
        self.learning.strengthen(self.store, pairs, now)

    def apply_learning(self) -> None:
        """Write what recalls taught (co-access pairs, access events); kept off the recall path. What a disk
        fault keeps from being written is kept to write next time."""
        with self.lock:
            pairs, events = self.learning.take_pending(), self.learning.take_events()
            try:
                self.learn(pairs, self.clock.now())
            except StorageFaultError:
                self.learning.give_back(pairs, events)
                raise
            try:
                self.store.record_events(events)
            except StorageFaultError:
                self.learning.give_back([], events)
                raise
