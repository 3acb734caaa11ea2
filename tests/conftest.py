import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from tests import postgres
from tests.backends import BACKENDS, OpenStore, opener
from tests.helpers import MODEL_CACHE_ENV, shared_model_cache

_REAL_CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@pytest.fixture(scope="session")
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's user cache dir (XDG_CACHE_HOME), so no test writes to the real one."""
    return tmp_path_factory.mktemp("user-cache")


@pytest.fixture(scope="session")
def model_cache(user_cache: Path) -> Path:
    """One model cache for the run, where the default setting puts it in that user cache, so the bundled model is
    quantized once, not once per data dir (tests of the quantizing itself use their own)."""
    return user_cache / "hebbian-memory" / "models"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_cache: Path, model_cache: Path) -> Path:
    """Every test gets its own data dir, the run's user cache and no stray HEBBIAN_MEMORY_* settings from the
    caller's shell. Servers started with a bare environment (helpers.base_env) get the model cache by name."""
    for name in list(os.environ):
        if name.startswith("HEBBIAN_MEMORY_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HEBBIAN_MEMORY_DATA_DIR", str(data_dir))
    # uv keeps its cache there too unless told: uvx (tests/cli/test_examples.py) keeps the real one.
    monkeypatch.setenv("UV_CACHE_DIR", os.environ.get("UV_CACHE_DIR") or str(_REAL_CACHE_HOME / "uv"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache))  # where platformdirs puts the user cache on Linux
    monkeypatch.setenv(MODEL_CACHE_ENV, str(model_cache))
    return data_dir


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    return isolated_env


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # In-process servers run on the backend the test's servers use (server_backend sets the environment).
    storage = {
        f"storage.{key}": os.environ[f"HEBBIAN_MEMORY_STORAGE_{key.upper()}"]
        for key in ("backend", "url")
        if f"HEBBIAN_MEMORY_STORAGE_{key.upper()}" in os.environ
    }
    overrides = {"data_dir": str(data_dir), "model.cache_dir": shared_model_cache(), **storage}
    return load_settings(env={}, overrides=overrides)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend a service test runs on (each such test runs once per backend)."""
    return str(request.param)


@pytest.fixture(params=["duckdb", "postgres"])
def server_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend the servers a test starts run on (their settings come from the environment): DuckDB in the
    data dir, or a fresh database of the run's PostgreSQL, dropped after the test."""
    if request.param == "duckdb":
        yield "duckdb"
        return
    name = postgres.create_database()
    monkeypatch.setenv("HEBBIAN_MEMORY_STORAGE_BACKEND", "postgres")
    monkeypatch.setenv("HEBBIAN_MEMORY_STORAGE_URL", postgres.database_url(name))
    try:
        yield "postgres"
    finally:
        postgres.drop_database(name)


@pytest.fixture
def open_store(backend: str) -> Iterator[OpenStore]:
    """Opens the backend's store; on PostgreSQL each path a test opens is a fresh database, dropped after it."""
    if backend != "postgres":
        yield opener(backend)
        return
    postgres.server_uri()  # skips (or fails, when required) here if there is no server
    with postgres.fresh_databases():
        yield opener(backend)


@pytest.fixture(scope="session")
def real_embedder(model_cache: Path) -> OnnxEmbedder:
    """The bundled offline model, loaded once for the whole run."""
    embedder = OnnxEmbedder("default", model_cache)
    embedder.load()
    return embedder


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))
    postgres.shutdown()  # before the early exit below, which runs no atexit hook


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run without the interpreter's teardown. After the hypothesis runs, that teardown frees DuckDB's
    binding module late, and nanobind then prints a page of "leaked" objects after the summary (no connection
    is open by then: every store is closed by its test). Everything is written and reported at this point."""
    if _EXIT_STATUS and os.environ.get("HEBBIAN_FULL_TEARDOWN", "") in ("", "0"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])


# How many kills, fuzz cases and checked writes the robustness tests ran: printed at the end of the run.
_COUNTS: dict[str, int] = {}
SOAK = os.environ.get("HEBBIAN_SOAK", "") not in ("", "0")  # the long version of the kill and fuzz runs


@pytest.fixture
def record_count() -> Callable[[str, int], None]:
    def record(name: str, n: int) -> None:
        _COUNTS[name] = _COUNTS.get(name, 0) + n

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _COUNTS:
        terminalreporter.write_sep("-", "robustness counts" + (" (soak)" if SOAK else ""))
        for name, n in sorted(_COUNTS.items()):
            terminalreporter.write_line(f"{name}: {n:,}")
