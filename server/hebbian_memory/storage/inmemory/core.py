"""The in-memory store's lock and transactions: one lock; a write changes a copy of the state and swaps it in only
when the whole call succeeded, so every method is one transaction and readers keep the moment they took."""

import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import cast

from hebbian_memory.errors import StorageError
from hebbian_memory.storage.inmemory.state import Logged, State
from hebbian_memory.storage.locks import NamedLocks
from hebbian_memory.storage.rows import Changes

__all__ = ["InMemoryCore"]


class InMemoryCore:
    """The state and its lock; the row classes build on it, and ``InMemoryStore`` joins them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._export_lock = threading.Lock()  # held by an export snapshot; a purge waits for it, as DuckDB's does
        self._state = State()
        self._closed = False
        self._log: list[Logged] = []  # every kept write's changes, in order: the change log
        self._trimmed = 0  # how many of its oldest changes were dropped (trim_changes)
        # The servers sharing an in-memory store live in this process: its threads are all to keep apart.
        self.exclusive = NamedLocks().exclusive

    def _read(self) -> State:
        """The current moment: never changed afterwards, so it may be read without the lock."""
        with self._lock:
            self._open()
            return self._state

    @contextmanager
    def _write(self) -> Generator[State]:
        """A transaction: the block changes a copy, kept only if the block returns."""
        with self._lock:
            self._open()
            draft = self._state.copy()
            yield draft
            self._state = draft
            self._log.extend(draft.logged)

    def change_head(self) -> int:
        with self._lock:
            return self._trimmed + len(self._log)

    def changes(self, after: int) -> Changes:
        """A shared in-memory store stands in for a database several servers write (tests of catching up)."""
        with self._lock:
            head, news = self._trimmed + len(self._log), self._log[max(after - self._trimmed, 0) :]
            complete = after >= self._trimmed
        ids = {kind: {key for k, key in news if k == kind} for kind in ("stored", "removed", "link", "use")}
        return Changes(
            head,
            frozenset(cast("set[int]", ids["stored"])),
            frozenset(cast("set[int]", ids["removed"])),
            frozenset(cast("set[tuple[int, int]]", ids["link"])),
            frozenset(cast("set[int]", ids["use"])),
            complete,
        )

    def trim_changes(self, keep: int) -> int:
        with self._lock:
            gone = max(len(self._log) - max(keep, 1), 0)
            del self._log[:gone]
            self._trimmed += gone
            return gone

    def _open(self) -> None:
        if self._closed:
            raise StorageError("The in-memory store is closed; nothing may be called after close().")
