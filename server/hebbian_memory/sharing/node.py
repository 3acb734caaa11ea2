"""This process's way to the memory: it owns the data dir (the MemoryService runs here and serves the others)
or it forwards every call to the process that does, and takes over when that one exits or dies."""

import logging
import os
import socket
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Literal, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import ByteStream, Listener, TaskGroup, TaskStatus

from hebbian_memory.clock import Clock, ManualClock, SystemClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import Embedder, OnnxEmbedder
from hebbian_memory.errors import DatabaseLockedError, HebbianMemoryError, StorageError, StorageFaultError
from hebbian_memory.faults import classify, fault
from hebbian_memory.files import private_dir
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.election import (
    ADDRESS_FILE,
    OwnerAddress,
    OwnerLock,
    new_token,
    read_address,
    remove_address,
    socket_path,
    write_address,
)
from hebbian_memory.sharing.ops import END_SESSION, START_SESSION, EndSessionArgs, Op, OpArgs, StartSessionArgs
from hebbian_memory.sharing.owner import OwnerServer
from hebbian_memory.sharing.remote import OwnerGone, RemoteMemory
from hebbian_memory.storage.duckdb import Store

__all__ = [
    "FLUSH_INTERVAL_S",
    "MAX_ATTEMPTS",
    "PUBLISH_RETRY_S",
    "RESTARTED_NOTE",
    "UNPUBLISHED",
    "LocalMemory",
    "Node",
    "build_embedder",
    "build_node",
    "settings_clock",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A", bound=OpArgs)

FLUSH_INTERVAL_S = 5.0
PUBLISH_RETRY_S = 1.0  # how soon an owner that could not publish its address (disk full) tries again
UNPUBLISHED = (
    "This server runs and serves its own client; other server processes on this data dir cannot reach it until "
    "the address is written, which is tried again every second."
)
MAX_ATTEMPTS = 5  # an owner dying mid-call hands the call to its successor; give up after this many in a row
RESTARTED_NOTE = (
    " (The memory process restarted during this call and it was sent again; the first attempt may already "
    "have been carried out.)"
)


def build_embedder(settings: Settings) -> Embedder:
    return OnnxEmbedder(
        settings.model.name, settings.model_cache_dir, settings.model.threads, settings.model.batch_size
    )


def build_node(
    settings: Settings, *, clock: Clock | None = None, embedder: Embedder | None = None, preload_model: bool = True
) -> "Node":
    """This process's memory node; it owns or reaches the data dir once :meth:`Node.running` is entered.
    Without ``preload_model``, an owning node loads the model at its first embedding, not while warming up.
    Here, not in ``app``, so the one-off commands build one without importing the MCP SDK."""
    return Node(settings, clock or settings_clock(settings), embedder or build_embedder(settings), preload_model)


def settings_clock(settings: Settings) -> Clock:
    """The real clock, or a stopped one where the settings fix the time (tests, replays)."""
    return SystemClock() if settings.fixed_time is None else ManualClock(settings.fixed_time)


class LocalMemory:
    """Calls on this process's own service, in worker threads."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service

    async def call(self, op: Op[A, T], args: A) -> T:
        return await anyio.to_thread.run_sync(op.run, self.service, args)


class Node:
    """Owner or forwarder of one data dir; tools call :meth:`call` and never need to know which."""

    def __init__(self, settings: Settings, clock: Clock, embedder: Embedder, preload_model: bool = True) -> None:
        self._settings = settings
        self._clock = clock
        self._embedder = embedder
        self._preload_model = preload_model  # else, as owner, the model loads at the first embedding
        self._lock = OwnerLock(settings.data_dir)
        self._memory: LocalMemory | RemoteMemory | None = None
        self._sessions: set[int] = set()  # sessions opened through this node and not yet ended
        self._switching = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._owner_scope: anyio.CancelScope | None = None
        self._owner_done = anyio.Event()
        self._session_complaint = _Complaint("recording a client session (its calls run without one meanwhile)")
        self._publish_complaint = _Complaint("publishing the owner's address")

    @property
    def role(self) -> Literal["owner", "forwarder", "closed"]:
        if isinstance(self._memory, LocalMemory):
            return "owner"
        return "forwarder" if self._memory is not None else "closed"

    @property
    def service(self) -> MemoryService | None:
        """The service, when this process owns the data dir."""
        return self._memory.service if isinstance(self._memory, LocalMemory) else None

    @asynccontextmanager
    async def running(self) -> AsyncGenerator["Node"]:
        """Own or reach the data dir for the life of the block; hand ownership on cleanly at the end."""
        private_dir(self._settings.data_dir)  # before anything is made in it
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                await self._connect_or_own()
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self._stop()
                tg.cancel_scope.cancel()

    async def call(self, op: Op[A, T], args: A) -> T:
        """Run one operation wherever the memory lives; a call cut off by the owner's exit is sent again."""
        restarted = False
        for _ in range(MAX_ATTEMPTS):
            memory = self._memory
            if memory is None:
                raise HebbianMemoryError("The memory is shutting down. Try again in a moment.")
            try:
                return await memory.call(op, args)
            except OwnerGone as e:
                log.warning("lost the memory owner (%s); finding the next one", e)
                restarted = True
                await self._replace(memory)
            except HebbianMemoryError as e:
                if restarted:
                    raise HebbianMemoryError(f"{e}{RESTARTED_NOTE}") from e
                raise
        raise StorageError(
            f"The memory owner process for {self._settings.data_dir} exited {MAX_ATTEMPTS} times in a row during "
            "one call. Check its log (stderr) and try again."
        )

    async def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str
    ) -> int | None:
        """A new session's id; None while the disk refuses its row (full, read-only): reads go on without one,
        and the caller asks again at the next call."""
        args = StartSessionArgs(
            transport=transport, client_name=client_name, client_version=client_version, project=project
        )
        try:
            session_id = await self.call(START_SESSION, args)
        except HebbianMemoryError as e:
            if not await self._refuses_writes(e):
                raise
            self._session_complaint.failed(e)
            return None
        self._session_complaint.succeeded()
        self._sessions.add(session_id)
        return session_id

    async def end_session(self, session_id: int) -> None:
        if session_id in self._sessions:
            self._sessions.discard(session_id)
            await self.call(END_SESSION, EndSessionArgs(session_id=session_id))

    async def _refuses_writes(self, error: HebbianMemoryError) -> bool:
        """Whether ``error`` means the data dir's disk refuses writes (full, read-only) rather than anything else."""
        if isinstance(error, StorageFaultError):
            return error.kind != "io"
        if self.role != "forwarder":
            return False
        # The owner's errors reach a forwarder as text, which we never parse: the data dir (on the same disk as
        # the owner's) is asked instead.
        kind = await anyio.to_thread.run_sync(classify, self._settings.data_dir, error)
        return kind != "io"

    # --- election ----------------------------------------------------------------------------------------

    async def _replace(self, lost: LocalMemory | RemoteMemory) -> None:
        async with self._switching:
            if self._memory is lost:  # the first caller to notice finds the successor; the rest use it
                self._memory = None
                await self._connect_or_own()

    async def _connect_or_own(self) -> None:
        """Become the owner if nobody is, else connect to the one who is; retry until the timeout."""
        timeout = self._settings.sharing.connect_timeout
        deadline = anyio.current_time() + timeout
        delay = 0.02
        last_problem = "no owner answered"
        while True:
            if self._lock.try_acquire():
                try:
                    self._memory = await self._become_owner(deadline)
                except BaseException:
                    self._lock.release()
                    raise
                log.info("owner of %s (pid %d)", self._settings.data_dir, os.getpid())
                return
            address = read_address(self._settings.data_dir)
            if address is not None:
                try:
                    remote = await RemoteMemory.connect(address, self._sessions)
                except (OwnerGone, OSError) as e:
                    last_problem = str(e)
                else:
                    assert self._tg is not None
                    self._tg.start_soon(remote.read_replies)
                    self._memory = remote
                    log.info("forwarding to the owner of %s (pid %d)", self._settings.data_dir, remote.owner_pid)
                    return
            if anyio.current_time() > deadline:
                raise StorageError(
                    f"Another process holds {self._settings.data_dir / 'owner.lock'} but does not answer "
                    f"({last_problem}) after {timeout:.0f} s. If a hebbian-memory server is hung, stop it; "
                    "else point this one at another data dir (--data-dir)."
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _become_owner(self, deadline: float) -> LocalMemory:
        service = await self._open_service(deadline)
        try:
            listener, address = await self._listen()
        except BaseException:
            await anyio.to_thread.run_sync(service.close)
            raise
        assert self._tg is not None
        self._owner_done = anyio.Event()
        await self._tg.start(self._own, service, listener, address, self._publish(address))
        return LocalMemory(service)

    async def _open_service(self, deadline: float) -> MemoryService:
        path = self._settings.data_dir / "memory.duckdb"
        while True:
            try:
                store = await anyio.to_thread.run_sync(Store.open, path, self._clock.now())
                return MemoryService(self._settings, store, self._embedder, self._clock)
            except DatabaseLockedError:
                # The previous owner may still be closing the file; anything else holding it past the
                # deadline is a foreign process, and the error names it.
                if anyio.current_time() > deadline:
                    raise
                await anyio.sleep(0.1)

    async def _listen(self) -> tuple[Listener[ByteStream], OwnerAddress]:
        token = new_token()
        if self._settings.sharing.socket != "tcp" and hasattr(socket, "AF_UNIX"):
            path = socket_path(self._settings.data_dir)
            if path.is_symlink():  # planted: the owner (we hold owner.lock) makes its own socket, never through a link
                path.unlink()
            try:
                unix = await anyio.create_unix_listener(path, mode=0o600)
            except OSError as e:
                # A data dir that takes no new file (read-only, say) must not stop the start: loopback TCP needs
                # none, and the token keeps other users out of it as it does in the "tcp" setting.
                log.warning("cannot make the owner's socket %s (%s); listening on loopback TCP instead", path, e)
            else:
                return unix, OwnerAddress(os.getpid(), "unix", str(path), token)
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = tcp.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
        return tcp, OwnerAddress(os.getpid(), "tcp", f"127.0.0.1:{port}", token)

    def _publish(self, address: OwnerAddress) -> bool:
        """Write our address for other processes. A disk that refuses it (full, say) must not stop the start:
        this process serves its own client meanwhile, and :meth:`_publish_loop` tries again."""
        try:
            write_address(self._settings.data_dir, address)
        except OSError as e:
            path = self._settings.data_dir / ADDRESS_FILE
            self._publish_complaint.failed(fault(path, e, "publishing the owner's address", UNPUBLISHED))
            return False
        self._publish_complaint.succeeded()
        return True

    async def _own(
        self,
        service: MemoryService,
        listener: Listener[ByteStream],
        address: OwnerAddress,
        published: bool,
        *,
        task_status: TaskStatus[None],
    ) -> None:
        """The owner's background work: warm-up, index flushing, serving the forwarders. Runs until
        :meth:`_stop`; then closes the database before releasing the lock, so the successor can open it."""
        try:
            with anyio.CancelScope() as scope:
                self._owner_scope = scope
                async with anyio.create_task_group() as tg:
                    # The model loads in the background so `initialize` is answered at once; calls wait for it.
                    tg.start_soon(_warm_up, service, self._preload_model)
                    tg.start_soon(_flush_loop, service)
                    if self._settings.plasticity.enabled:
                        tg.start_soon(_consolidation_loop, service, self._settings.plasticity.pass_minutes * 60)
                    tg.start_soon(listener.serve, OwnerServer(service, address.token).handle)
                    if not published:
                        tg.start_soon(self._publish_loop, address)
                    task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
                remove_address(self._settings.data_dir, address)
                try:
                    await anyio.to_thread.run_sync(service.close)
                finally:
                    self._lock.release()
                    self._owner_done.set()
                    log.info("released %s", self._settings.data_dir)

    async def _publish_loop(self, address: OwnerAddress) -> None:
        while True:
            await anyio.sleep(PUBLISH_RETRY_S)
            if self._publish(address):
                return

    async def _stop(self) -> None:
        for session_id in list(self._sessions):
            try:
                await self.end_session(session_id)
            except HebbianMemoryError as e:
                log.warning("could not end session %d: %s", session_id, e)
        memory, self._memory = self._memory, None
        if isinstance(memory, LocalMemory) and self._owner_scope is not None:
            self._owner_scope.cancel()  # in-flight calls finish first: their threads are never abandoned
            await self._owner_done.wait()
        elif isinstance(memory, RemoteMemory):
            await memory.aclose()


async def _warm_up(service: MemoryService, load_model: bool) -> None:
    # Not cancellable mid-way (a thread cannot be interrupted); close() waits for it to finish.
    await anyio.to_thread.run_sync(lambda: service.warm_up(load_model=load_model), abandon_on_cancel=True)


class _Complaint:
    """A background loop's failures, logged once each until the loop succeeds again (a full disk would
    otherwise log every 5 s)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._last: str | None = None

    def failed(self, error: Exception) -> None:
        if str(error) != self._last:
            log.error("%s failed (retried by itself): %s", self._what, error)
            self._last = str(error)

    def succeeded(self) -> None:
        if self._last is not None:
            log.warning("%s works again", self._what)
            self._last = None


async def _flush_loop(service: MemoryService) -> None:
    """Writes what recalls taught and saves the vector index. A disk fault must not end the process: it is
    logged once, the service keeps what it could not write, and the next write call reports it."""
    complaint = _Complaint("saving in the background")
    while True:
        await anyio.sleep(FLUSH_INTERVAL_S)
        try:
            await anyio.to_thread.run_sync(service.flush)
        except (HebbianMemoryError, OSError) as e:
            complaint.failed(e)
        else:
            complaint.succeeded()


async def _consolidation_loop(service: MemoryService, interval_s: float) -> None:
    """Consolidation passes in the background, every interval (decay is by elapsed time, so a late pass
    catches up). Each pass is a few short transactions under the write lock; cancelling between them is safe."""
    complaint = _Complaint("consolidation")
    while True:
        await anyio.sleep(interval_s)
        try:
            report = await anyio.to_thread.run_sync(service.consolidate)
            log.info("consolidation: %s", report)
        except (HebbianMemoryError, OSError) as e:  # e.g. the model failed to load, or the disk is full
            complaint.failed(e)
        else:
            complaint.succeeded()
