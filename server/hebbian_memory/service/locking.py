"""The service's readers-writer lock: writes (remember, forget, associate, import, passes, flushes) exclude
everything; recalls share it, so they rank side by side and never queue behind one another, only behind a write.

What a recall reads must not change under it: the vector index (a memory removed between its search and the
fetch of its vector), the keyword index and the per-memory maps, the link graph, and the database rows it fetches.
Each writer changes the database and then those caches while holding the lock exclusively, so a recall holding it
shared sees them all at one state. (Each cache also guards its own structures with its own small lock, and the
database serialises statements on its one connection; those keep a call from tearing, this keeps calls consistent.)
"""

import threading
from collections.abc import Generator
from contextlib import contextmanager
from types import TracebackType

__all__ = ["ReadWriteLock"]


class ReadWriteLock:
    """Exclusive as a context manager (``with lock:``), reentrant for its holder, who may also read; shared with
    :meth:`shared`, reentrant too. A waiting writer goes before new readers: recalls cannot starve a write. A
    reader asking to write raises: it would wait for itself."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._writer: int | None = None  # the thread holding it exclusively
        self._depth = 0  # how many times it holds it
        self._readers = 0
        self._writers_waiting = 0
        self._reading = threading.local()  # how many times this thread holds it shared

    def _reads(self) -> int:
        held: int = getattr(self._reading, "depth", 0)
        return held

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._writer != me and self._reads():  # only this thread sets _writer to its own id
            raise RuntimeError("a thread reading under the lock asked to write: it would wait for itself")
        with self._changed:
            if self._writer == me:
                self._depth += 1
                return
            self._writers_waiting += 1
            try:
                self._changed.wait_for(lambda: self._writer is None and self._readers == 0)
            finally:
                self._writers_waiting -= 1
            self._writer, self._depth = me, 1

    def release(self) -> None:
        with self._changed:
            if self._writer != threading.get_ident():
                raise RuntimeError("released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                self._changed.notify_all()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    @contextmanager
    def shared(self) -> Generator[None]:
        """Held with other readers; waits while a writer holds it or waits for it (unless this thread is that
        writer, or reads already)."""
        depth = self._reads()
        if depth or self._writer == threading.get_ident():  # it can change only while this thread holds it
            self._reading.depth = depth + 1
            try:
                yield
            finally:
                self._reading.depth = depth
            return
        with self._changed:
            self._changed.wait_for(lambda: self._writer is None and self._writers_waiting == 0)
            self._readers += 1
        self._reading.depth = 1
        try:
            yield
        finally:
            self._reading.depth = 0
            with self._changed:
                self._readers -= 1
                if self._readers == 0:
                    self._changed.notify_all()
