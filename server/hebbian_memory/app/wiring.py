"""Everything the settings describe, built in one place: the clock, the embedder, the store, the service and
this process's node. The CLI's one-off commands and the MCP server both come here; nothing else constructs a
store or a service (tests and benchmarks aside). Never imports the MCP SDK."""

from functools import partial

from hebbian_memory.clock import Clock, ManualClock, SystemClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.errors import ConfigError
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.node import Node
from hebbian_memory.storage import MemoryStore
from hebbian_memory.storage.duckdb import Store

__all__ = ["DATABASE", "build_embedder", "build_node", "open_service", "open_store", "settings_clock"]

DATABASE = "memory.duckdb"  # the store's file in the data dir


def settings_clock(settings: Settings) -> Clock:
    """The real clock, or a stopped one where the settings fix the time (tests, replays)."""
    return SystemClock() if settings.fixed_time is None else ManualClock(settings.fixed_time)


def build_embedder(settings: Settings) -> Embedder:
    return OnnxEmbedder(
        settings.model.name, settings.model_cache_dir, settings.model.threads, settings.model.batch_size
    )


def open_store(settings: Settings, clock: Clock, embedder: Embedder) -> MemoryStore:
    """The configured store, opened (verified, migrated) for writing; blocking. DuckDB: the data dir's file;
    PostgreSQL: the database at ``storage.url``, its vector index made for the embedder's vectors."""
    if settings.storage.backend == "postgres":
        try:  # the optional extra: imported only by those who chose it
            from hebbian_memory.storage.postgres import PostgresStore
        except ImportError as e:
            raise ConfigError(
                f"storage.backend is postgres, but its driver is not installed ({e.name} is missing). Install the "
                "extra: uvx --from 'hebbian-memory[postgres]' hebbian-memory, or pip install "
                "'hebbian-memory[postgres]'."
            ) from e
        return PostgresStore.open(settings.storage.url, clock.now(), embedder.dim)
    return Store.open(settings.data_dir / DATABASE, clock.now())


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
