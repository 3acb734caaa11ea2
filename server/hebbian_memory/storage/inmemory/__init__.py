"""A second storage backend: every row in Python dicts, nothing on disk (``InMemoryStore``). It imports only
storage.base, storage.rows and errors, so it shows what a backend must do to stand behind the service."""

from hebbian_memory.storage.inmemory.store import InMemoryStore

__all__ = ["InMemoryStore"]
