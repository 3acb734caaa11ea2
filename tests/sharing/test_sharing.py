"""Owner election and forwarding between memory nodes on one data dir (in one process: each node holds its
own lock descriptor, so they elect exactly as separate processes do)."""

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.abc
import pytest

from hebbian_memory.app.wiring import build_node
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.errors import HebbianMemoryError
from hebbian_memory.models import MemoryInput
from hebbian_memory.sharing.election import ADDRESS_FILE, read_address
from hebbian_memory.sharing.node import Node
from hebbian_memory.sharing.ops import FORGET, RECALL, REMEMBER_MANY, ForgetArgs, RecallArgs, RememberManyArgs
from tests.backends import servers_store
from tests.helpers import FakeEmbedder, shared_model_cache
from tests.planted import assert_private_regular_file, assert_untouched, plant_links

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def node(settings: Settings) -> Node:
    return build_node(settings, clock=ManualClock(START), embedder=FakeEmbedder())


async def remember(n: Node, content: str, session_id: int | None = None) -> int:
    (result,) = await n.call(
        REMEMBER_MANY, RememberManyArgs(memories=[MemoryInput(content=content)], session_id=session_id)
    )
    return result.id


async def recalled_ids(n: Node, query: str) -> list[int]:
    return [hit.id for hit in (await n.call(RECALL, RecallArgs(query=query, k=10))).hits]


async def test_the_second_node_forwards_to_the_first_and_both_see_every_memory(settings: Settings) -> None:
    async with node(settings).running() as first, node(settings).running() as second:
        assert (first.role, second.role) == ("owner", "forwarder")
        by_first = await remember(first, "The boiler service is booked for March.")
        by_second = await remember(second, "Lena's birthday party is at the lake house.")
        assert (await recalled_ids(first, "birthday lake"))[0] == by_second
        assert (await recalled_ids(second, "boiler service"))[0] == by_first


class OwnerInTask:
    """A node run in its own task (as another process would run it), stopped on demand."""

    def __init__(self, settings: Settings) -> None:
        self.node = node(settings)
        self._stop = anyio.Event()
        self._stopped = anyio.Event()

    async def start(self, tg: anyio.abc.TaskGroup) -> Node:
        ready = anyio.Event()

        async def run() -> None:
            async with self.node.running():
                ready.set()
                await self._stop.wait()
            self._stopped.set()

        tg.start_soon(run)
        await ready.wait()
        return self.node

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped.wait()


async def test_a_forwarder_takes_over_when_the_owner_stops_and_keeps_every_memory(settings: Settings) -> None:
    async with anyio.create_task_group() as tg:
        owner = OwnerInTask(settings)
        first = await owner.start(tg)
        async with node(settings).running() as second:
            assert (first.role, second.role) == ("owner", "forwarder")
            session = await second.start_session("stdio", "test-client", "1.0", "default")
            ids = [await remember(second, f"Note {i} about the garden shed roof.", session) for i in range(5)]
            await owner.stop()
            # The owner is gone; the next call finds no one and the forwarder becomes the owner.
            later = await remember(second, "The shed roof was fixed in June.", session)
            assert second.role == "owner"
            assert set(ids) | {later} <= set(await recalled_ids(second, "garden shed roof"))
    store = servers_store(settings.data_dir, ManualClock(START).now())  # where the servers stored them
    try:
        assert store.count() == 6
    finally:
        store.close()


async def test_an_episode_continues_across_a_takeover(settings: Settings) -> None:
    async with anyio.create_task_group() as tg:
        owner = OwnerInTask(settings)
        await owner.start(tg)
        async with node(settings).running() as second:
            session = await second.start_session("stdio", None, None, "default")
            question = await remember(second, "What colour did we paint the nursery?", session)
            await owner.stop()
            answer = await remember(second, "Sage green, two coats.", session)  # stored by the new owner
            service = second.service
            assert service is not None
            assert service.links(answer) == [(question, 0.5)], "the new owner links it to the previous turn"


async def test_a_rejected_forwarded_call_gives_the_owners_message_and_changes_nothing(settings: Settings) -> None:
    async with node(settings).running() as first, node(settings).running() as second:
        kept = await remember(second, "Keep this one.")
        with pytest.raises(HebbianMemoryError, match="No memory with id 999999"):
            await second.call(FORGET, ForgetArgs(ids=[999999, kept]))
        assert kept in await recalled_ids(first, "keep this one")


async def test_stale_files_from_a_killed_owner_are_cleaned_up(settings: Settings, tmp_path: Path) -> None:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True)
    dead = data_dir / "owner.sock"
    with socket.socket(socket.AF_UNIX) as s:  # a socket file nobody listens on, as a SIGKILL leaves it
        s.bind(str(dead))
    (data_dir / ADDRESS_FILE).write_text(json.dumps({"pid": 999999, "kind": "unix", "path": str(dead), "token": "x"}))
    with anyio.fail_after(10):
        async with node(settings).running() as n:
            assert n.role == "owner"
            address = read_address(data_dir)
            assert address is not None
            assert address.pid == os.getpid()
            assert await recalled_ids(n, "anything") == []


async def test_the_owners_address_is_not_written_through_links_planted_in_the_data_dir(settings: Settings) -> None:
    """owner.json holds the token that lets a client in: links planted at it and at its old temporary name
    (owner.tmp) are replaced, never written through."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True)
    victim = plant_links(data_dir / ADDRESS_FILE, "owner.tmp")
    with anyio.fail_after(10):
        async with node(settings).running() as n:
            assert n.role == "owner"
            assert_untouched(victim)
            assert_private_regular_file(data_dir / ADDRESS_FILE)
            address = read_address(data_dir)
            assert address is not None
            assert address.pid == os.getpid()


async def test_forwarding_over_loopback_tcp_needs_the_owners_token(data_dir: Path) -> None:
    settings = load_settings(
        env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache(), "sharing.socket": "tcp"}
    )
    async with node(settings).running(), node(settings).running() as second:
        address = read_address(data_dir)
        assert address is not None
        assert address.kind == "tcp"
        assert await recalled_ids(second, "x") == []
        host, _, port = address.path.rpartition(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b'{"token": "guess"}\n')
            assert b"wrong token" in await stream.receive()
