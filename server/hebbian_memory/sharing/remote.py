"""The forwarding side: a connection to the owner that carries many concurrent calls."""

import itertools
from collections.abc import Iterable
from typing import Any, TypeVar

import anyio
from anyio.abc import ByteStream

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.sharing.election import OwnerAddress
from hebbian_memory.sharing.ops import Op, OpArgs
from hebbian_memory.sharing.wire import GONE, Channel, Message, ProtocolError

__all__ = ["HELLO_TIMEOUT_S", "OwnerGone", "RemoteMemory"]

T = TypeVar("T")
A = TypeVar("A", bound=OpArgs)

HELLO_TIMEOUT_S = 5.0


class OwnerGone(Exception):
    """The connection to the owner broke; a call in flight may or may not have been carried out."""


class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: Message | None = None  # None once done: the owner went away


class RemoteMemory:
    """Calls the owner over its socket; replies are matched to calls by id, so calls may overlap."""

    def __init__(self, channel: Channel, owner_pid: int) -> None:
        self._channel = channel
        self.owner_pid = owner_pid
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self.gone = False

    @classmethod
    async def connect(cls, address: OwnerAddress, sessions: Iterable[int]) -> "RemoteMemory":
        """Connect and introduce ourselves (with the token, and our open sessions for the owner to track)."""
        stream: ByteStream
        if address.kind == "unix":
            stream = await anyio.connect_unix(address.path)
        else:
            host, _, port = address.path.rpartition(":")
            stream = await anyio.connect_tcp(host, int(port))
        channel = Channel(stream)
        try:
            with anyio.fail_after(HELLO_TIMEOUT_S):
                await channel.send({"token": address.token, "sessions": sorted(sessions)})
                reply = await channel.receive()
        except (*GONE, ProtocolError, TimeoutError) as e:
            await channel.aclose()
            raise OwnerGone(f"the owner at {address.path} did not answer: {e!r}") from e
        if not reply.get("ok"):
            await channel.aclose()
            raise OwnerGone(f"the owner at {address.path} refused us: {reply.get('error')}")
        return cls(channel, int(reply.get("pid", address.pid)))

    async def read_replies(self) -> None:
        """Hand each reply to its caller until the connection ends; then every waiting call learns it."""
        try:
            while True:
                reply = await self._channel.receive()
                pending = self._pending.pop(int(reply.get("id", -1)), None)
                if pending is not None:
                    pending.reply = reply
                    pending.done.set()
        except (*GONE, ProtocolError):
            pass
        finally:
            self.gone = True
            for pending in self._pending.values():
                pending.done.set()
            self._pending.clear()
            with anyio.CancelScope(shield=True):
                await self._channel.aclose()

    async def call(self, op: Op[A, T], args: A) -> T:
        if self.gone:
            raise OwnerGone("the owner has gone")
        request_id = next(self._ids)
        pending = self._pending[request_id] = _Pending()
        try:
            # Python values, not JSON mode: a NaN or an infinity reaches the owner's checks as itself, not as null.
            await self._channel.send({"id": request_id, "op": op.name, "args": args.model_dump()})
        except GONE as e:
            self._pending.pop(request_id, None)
            raise OwnerGone(f"sending to the owner failed: {e!r}") from e
        await pending.done.wait()
        reply = pending.reply
        if reply is None:
            raise OwnerGone("the owner went away during the call")
        if "error" in reply:
            raise HebbianMemoryError(str(reply["error"]))
        result: Any = reply.get("result")
        return op.decode(result)

    async def aclose(self) -> None:
        await self._channel.aclose()
