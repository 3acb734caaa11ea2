"""Everything the settings describe, built in one place: the clock, the embedder, the store, the service and
this process's node. The CLI's one-off commands and the MCP server both come here; nothing else constructs a
store or a service (tests and benchmarks aside). Never imports the MCP SDK."""

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from hebbian_memory.clock import Clock, ManualClock, SystemClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.errors import ConfigError
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.node import Node
from hebbian_memory.storage import MemoryStore
from hebbian_memory.storage.duckdb import Store

if TYPE_CHECKING:
    from hebbian_memory.storage.postgres.health import PostgresHealth

__all__ = [
    "DATABASE",
    "build_embedder",
    "build_node",
    "bulk_load",
    "open_service",
    "open_store",
    "open_store_at",
    "postgres_health",
    "redact_url",
    "settings_clock",
]

DATABASE = "memory.duckdb"  # the store's file in the data dir


def settings_clock(settings: Settings) -> Clock:
    """The real clock, or a stopped one where the settings fix the time (tests, replays)."""
    return SystemClock() if settings.fixed_time is None else ManualClock(settings.fixed_time)


def build_embedder(settings: Settings) -> Embedder:
    return OnnxEmbedder(
        settings.model.name, settings.model_cache_dir, settings.model.threads, settings.model.batch_size
    )


def _missing_driver(e: ImportError) -> ConfigError:
    return ConfigError(
        f"storage.backend is postgres, but its driver is not installed ({e.name} is missing). Install the "
        "extra: uvx --from 'hebbian-memory[postgres]' hebbian-memory, or pip install "
        "'hebbian-memory[postgres]'."
    )


def open_store(settings: Settings, clock: Clock, embedder: Embedder) -> MemoryStore:
    """The configured store, opened (verified, migrated) for writing; blocking. DuckDB: the data dir's file;
    PostgreSQL: the database at ``storage.url``, its vector index made for the embedder's vectors."""
    if settings.storage.backend == "postgres":
        return open_store_at("postgres", settings.storage.url, clock.now(), embedder)
    return open_store_at("duckdb", str(settings.data_dir / DATABASE), clock.now(), embedder)


def open_store_at(backend: str, where: str, now: datetime, embedder: Embedder) -> MemoryStore:
    """A store of either backend at ``where`` (a DuckDB file's path, or a PostgreSQL URL), opened and migrated;
    for `migrate`, which opens both kinds whatever the settings say."""
    if backend == "postgres":
        try:  # the optional extra: imported only by those who chose it
            from hebbian_memory.storage.postgres import PostgresStore
        except ImportError as e:
            raise _missing_driver(e) from e
        return PostgresStore.open(where, now, embedder.dim)
    return Store.open(Path(where), now)


def bulk_load(store: MemoryStore) -> AbstractContextManager[bool]:
    """Around a load of many rows into ``store``: for an empty PostgreSQL store its search indexes are dropped
    and built once at the end (yields True then); otherwise nothing (False)."""
    try:
        from hebbian_memory.storage.postgres import PostgresStore
        from hebbian_memory.storage.postgres.bulk import bulk_load as postgres_bulk_load
    except ImportError:  # without the driver no store is a PostgreSQL one
        return nullcontext(False)
    return postgres_bulk_load(store.url) if isinstance(store, PostgresStore) else nullcontext(False)


def postgres_health(settings: Settings) -> "PostgresHealth":
    """What doctor reports of the configured PostgreSQL database (changing nothing); raises our typed errors."""
    try:
        from hebbian_memory.storage.postgres.health import health
    except ImportError as e:
        raise _missing_driver(e) from e
    return health(settings.storage.url, build_embedder(settings).dim)


def redact_url(url: str) -> str:
    """A database URL without its password, fit to print."""
    try:
        from hebbian_memory.storage.postgres.core import redact
    except ImportError:
        return "<the database URL>"
    return redact(url)


def open_service(settings: Settings, clock: Clock, embedder: Embedder) -> MemoryService:
    """The service over the configured store; blocking. Its caches fill at ``warm_up``."""
    return MemoryService(settings, open_store(settings, clock, embedder), embedder, clock)


def build_node(
    settings: Settings, *, clock: Clock | None = None, embedder: Embedder | None = None, preload_model: bool = True
) -> Node:
    """This process's memory node; it owns or reaches the data dir once :meth:`Node.running` is entered.
    Without ``preload_model``, an owning node loads the model at its first embedding, not while warming up."""
    clock = clock or settings_clock(settings)
    opener = partial(open_service, settings, clock, embedder or build_embedder(settings))
    return Node(settings, opener, preload_model)
