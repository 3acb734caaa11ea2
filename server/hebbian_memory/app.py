"""The composition root: build_server wires settings, storage, model, indexes and tools into an MCPServer."""

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer

from hebbian_memory import __version__
from hebbian_memory.clock import Clock, SystemClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding import Embedder, FastEmbedEmbedder
from hebbian_memory.memory import MemoryService
from hebbian_memory.storage import Store
from hebbian_memory.tools import INSTRUCTIONS, AppContext, register_tools

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 5.0


def build_server(
    settings: Settings,
    *,
    clock: Clock | None = None,
    embedder: Embedder | None = None,
    transport: str = "stdio",
) -> MCPServer[AppContext]:
    """Build the MCP server; nothing is opened until its lifespan starts."""
    the_clock = clock or SystemClock()
    the_embedder = embedder or FastEmbedEmbedder(
        settings.model.name, settings.model_cache_dir, settings.model.threads, settings.model.batch_size
    )

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppContext]) -> AsyncGenerator[AppContext]:
        store = await anyio.to_thread.run_sync(Store.open, settings.data_dir / "memory.duckdb", the_clock.now())
        service = MemoryService(settings, store, the_embedder, the_clock)
        session_id = await anyio.to_thread.run_sync(service.start_session, transport)
        try:
            async with anyio.create_task_group() as tg:
                # The model loads in the background so `initialize` is answered at once; calls wait for it.
                tg.start_soon(_warm_up, service)
                tg.start_soon(_flush_loop, service)
                try:
                    yield AppContext(service=service, session_id=session_id)
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(service.end_session, session_id)
                await anyio.to_thread.run_sync(service.close)
                log.info("closed %s", settings.data_dir)

    server: MCPServer[AppContext] = MCPServer(
        name="hebbian-memory",
        title="Hebbian Memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # pyright: ignore[reportArgumentType] -- validated in config
    )
    register_tools(server)
    return server


async def _warm_up(service: MemoryService) -> None:
    # Not cancellable mid-way (a thread cannot be interrupted); close() waits for it to finish.
    await anyio.to_thread.run_sync(service.warm_up, abandon_on_cancel=True)


async def _flush_loop(service: MemoryService) -> None:
    while True:
        await anyio.sleep(FLUSH_INTERVAL_S)
        await anyio.to_thread.run_sync(service.flush)
