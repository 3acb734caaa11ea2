"""The storage backends the service's own tests run on: DuckDB (a real file in the test's data dir), the
in-memory store (nothing on disk) and PostgreSQL (a fresh database on the run's embedded server, tests/postgres.py).
The ``open_store`` fixture (conftest) is parametrised over all three."""

import os
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

from hebbian_memory.storage import MemoryStore
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.inmemory import InMemoryStore
from hebbian_memory.storage.postgres import PostgresStore
from tests.postgres import DIM, open_postgres

BACKENDS = ["duckdb", "memory", "postgres"]

# Opens a store for the service: (the DuckDB file's path, now) -> store. The in-memory store ignores both; for
# PostgreSQL the path names a database of the run's server (the same path, the same database).
OpenStore = Callable[[Path, datetime], MemoryStore]


def open_store(backend: str, path: Path, now: datetime) -> MemoryStore:
    if backend == "duckdb":
        return Store.open(path, now)
    if backend == "memory":
        return InMemoryStore()
    if backend == "postgres":
        return open_postgres(path, now)
    raise ValueError(f"unknown storage backend {backend!r}")


def opener(backend: str) -> OpenStore:
    return partial(open_store, backend)


def servers_store(data_dir: Path, now: datetime) -> MemoryStore:
    """The store the test's servers use (tests/conftest.py server_backend): their PostgreSQL database when the
    environment names one, else the data dir's DuckDB file. For reading what they stored."""
    if os.environ.get("HEBBIAN_MEMORY_STORAGE_BACKEND") == "postgres":
        return PostgresStore.open(os.environ["HEBBIAN_MEMORY_STORAGE_URL"], now, DIM)
    return Store.open(data_dir / "memory.duckdb", now)


open_duckdb: OpenStore = opener("duckdb")  # for tests about the DuckDB file itself (restarts, bytes on disk)
