"""The one place native libraries are imported, in the only order that is safe.

Importing usearch before onnxruntime in one process segfaults (usearch 2.26 with onnxruntime 1.31),
so every use of usearch goes through :func:`usearch_index`, which loads onnxruntime first. Both are
loaded on first use, not at import, so the server answers ``initialize`` before paying for them.
"""

import threading
from types import ModuleType

_lock = threading.Lock()
_usearch: ModuleType | None = None


def load_onnxruntime() -> ModuleType:
    """Import onnxruntime (idempotent)."""
    import onnxruntime

    return onnxruntime


def usearch_index() -> ModuleType:
    """Return ``usearch.index``, importing onnxruntime before it."""
    global _usearch  # noqa: PLW0603 -- a process-wide, import-once cache is the point
    with _lock:
        if _usearch is None:
            load_onnxruntime()
            import usearch.index

            _usearch = usearch.index
        return _usearch
