"""The owner's side: answers forwarded calls from the other servers on its data dir."""

import contextlib
import hmac
import logging
import os
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import ByteStream
from pydantic import ValidationError

from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.ops import OPS, START_SESSION, EndSessionArgs, OpArgs
from hebbian_memory.sharing.wire import GONE, Channel, Message, ProtocolError

__all__ = ["REPLY_TIMEOUT_S", "OwnerServer"]

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 5.0
A = TypeVar("A", bound=OpArgs)


class OwnerServer:
    """Serves one connection per forwarding server; each call runs on the service in a worker thread."""

    def __init__(self, service: MemoryService, token: str) -> None:
        self._service = service
        self._token = token

    async def handle(self, stream: ByteStream) -> None:
        channel = Channel(stream)
        sessions: set[int] = set()  # the client's open sessions, ended if it goes away without ending them
        try:
            hello = await channel.receive()
            if not hmac.compare_digest(str(hello.get("token", "")), self._token):
                await channel.send({"error": "wrong token"})
                return
            sessions.update(int(s) for s in hello.get("sessions", []))
            await channel.send({"ok": True, "pid": os.getpid()})
            async with anyio.create_task_group() as tg:
                while True:
                    try:
                        message = await channel.receive()
                    except (*GONE, ProtocolError):
                        break  # in-flight calls still finish: a write that started completes
                    tg.start_soon(self._answer, channel, message, sessions)
        except (*GONE, ProtocolError) as e:
            log.debug("forwarding client dropped during hello: %s", e)
        finally:
            with anyio.CancelScope(shield=True):
                for session_id in sessions:
                    await anyio.to_thread.run_sync(self._service.end_session, session_id)
                await channel.aclose()

    async def _answer(self, channel: Channel, message: Message, sessions: set[int]) -> None:
        request_id = message.get("id")
        op = OPS.get(str(message.get("op")))
        args: Any = message.get("args")
        reply: Message
        try:
            if op is None or not isinstance(args, dict):
                raise ProtocolError(f"unknown operation {message.get('op')!r}")
            call_args = _checked(op.args, args)  # pyright: ignore[reportUnknownArgumentType] -- a JSON object
            result = await anyio.to_thread.run_sync(op.run, self._service, call_args)
            reply = {"id": request_id, "result": op.encode(result)}
            if op is START_SESSION:
                sessions.add(int(result))
            elif isinstance(call_args, EndSessionArgs):
                sessions.discard(call_args.session_id)
        except HebbianMemoryError as e:
            reply = {"id": request_id, "error": str(e)}
        except Exception as e:  # a bug must not take the owner down for every client: report it to the caller
            log.exception("forwarded %s failed", message.get("op"))
            reply = {"id": request_id, "error": f"Internal error in the memory owner process: {e!r}"}
        # Shielded: when the owner stops, a call that has run still gets its answer (bounded, in case the
        # forwarder has stopped reading), so the forwarder need not send it again to the next owner.
        with (
            anyio.CancelScope(shield=True),
            contextlib.suppress(*GONE, TimeoutError),
            anyio.fail_after(REPLY_TIMEOUT_S),
        ):
            await channel.send(reply)


def _checked(model: type[A], args: dict[str, Any]) -> A:
    """A forwarded call's arguments as its operation's model; a malformed message is a protocol error."""
    try:
        return model.model_validate(args)
    except ValidationError as e:
        raise ProtocolError(f"malformed arguments: {e.error_count()} errors") from e
