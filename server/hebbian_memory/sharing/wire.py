"""Messages between a forwarding server and the owner: one JSON object per line over a local stream."""

import json
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ["GONE", "MAX_MESSAGE_BYTES", "Channel", "Message", "ProtocolError"]

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a full remember_many batch is ~20 MB; leave room for JSON escapes

# Everything that means "the other side has gone".
GONE: tuple[type[BaseException], ...] = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)

Message = dict[str, Any]


class ProtocolError(Exception):
    """The peer sent something that is not one of our messages."""


class Channel:
    """Framed JSON messages over a byte stream; sends are serialised, receives come from one reader."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._buffer = BufferedByteReceiveStream(stream)
        self._send_lock = anyio.Lock()

    async def send(self, message: Message) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._send_lock:
            await self._stream.send(data)

    async def receive(self) -> Message:
        line = await self._buffer.receive_until(b"\n", MAX_MESSAGE_BYTES)
        try:
            message: Any = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {line[:80]!r}") from e
        if not isinstance(message, dict):
            raise ProtocolError(f"not an object: {line[:80]!r}")
        return message  # pyright: ignore[reportUnknownVariableType] -- a JSON object

    async def aclose(self) -> None:
        await self._stream.aclose()
