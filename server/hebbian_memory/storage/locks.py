"""Named locks for stores one process writes: ``exclusive`` only has this process's threads to keep apart."""

import threading
from collections.abc import Generator
from contextlib import contextmanager

__all__ = ["NamedLocks"]


class NamedLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def exclusive(self, name: str) -> Generator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield
