"""Several real server processes on one data dir, each driven by its own MCP client over stdio, as when
Claude Desktop, an IDE and a terminal agent run at once: one owner, the rest forward, nothing is lost."""

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from mcp import Client

from hebbian_memory.sharing.election import read_address
from tests.backends import servers_store
from tests.helpers import call, stdio_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOPICS = ["sailing", "pottery", "chess", "baking"]


def fact(client: int, i: int) -> str:
    return f"Client {client} note {i}: the {TOPICS[client]} club meets at venue {client * 1000 + i}."


def stored_contents(data_dir: Path) -> list[str]:
    store = servers_store(data_dir, datetime(2026, 1, 1, tzinfo=UTC))  # only reads
    try:
        return [content for batch in store.iter_contents() for _, content in batch]
    finally:
        store.close()


async def test_four_processes_store_a_thousand_memories_exactly_once_and_all_recall_them(data_dir: Path) -> None:
    per_client = 250
    acked: dict[str, int] = {}
    recalls_done = 0
    writers_left = len(TOPICS)
    all_written = anyio.Event()

    async def work(client_no: int) -> None:
        nonlocal recalls_done, writers_left
        async with stdio_client(data_dir) as client:
            for i in range(per_client):
                content = fact(client_no, i)
                result = await call(client, "remember", content=content, tags=[TOPICS[client_no]])
                assert result["created"], content
                acked[content] = result["id"]
                if i % 25 == 24:  # recall memories of the other clients while they are still writing
                    other = (client_no + 1) % len(TOPICS)
                    await call(client, "recall", query=f"{TOPICS[other]} club venue", k=5)
                    recalls_done += 1
            writers_left -= 1
            if writers_left == 0:
                all_written.set()
            await all_written.wait()
            # Every client can recall memories that every other client stored.
            for other in range(len(TOPICS)):
                for i in (0, per_client // 2, per_client - 1):
                    hits = (await call(client, "recall", query=fact(other, i), k=3))["hits"]
                    assert fact(other, i) in [h["content"] for h in hits], (client_no, other, i)

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tg:
            for client_no in range(len(TOPICS)):
                tg.start_soon(work, client_no)
    contents = stored_contents(data_dir)
    assert len(acked) == len(TOPICS) * per_client
    assert len(set(acked.values())) == len(acked), "every memory got its own id"
    assert sorted(contents) == sorted(acked), "stored exactly once: no loss, no duplicates"
    assert recalls_done == len(TOPICS) * per_client // 25


async def test_killing_the_owner_mid_traffic_loses_no_acknowledged_write(data_dir: Path) -> None:
    acked: set[str] = set()
    owner_client_failed = False
    killed = anyio.Event()

    async def work(client_no: int, client: Client) -> None:
        nonlocal owner_client_failed
        for i in range(120):
            content = fact(client_no, i)
            try:
                await call(client, "remember", content=content)
            except Exception:  # only the client whose server we killed may fail
                assert killed.is_set()
                owner_client_failed = True
                return
            acked.add(content)
            await anyio.sleep(0.01)

    async with stdio_client(data_dir) as first:
        await call(first, "recall", query="warm up", k=1)  # the first server is the owner and is ready
        address = read_address(data_dir)
        assert address is not None
        owner_pid = address.pid
        async with stdio_client(data_dir) as second, stdio_client(data_dir) as third:
            with anyio.fail_after(180):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(work, 1, second)
                    tg.start_soon(work, 2, third)
                    tg.start_soon(work, 0, first)
                    while len(acked) < 60:
                        await anyio.sleep(0.01)
                    os.kill(owner_pid, signal.SIGKILL)
                    killed.set()
            new_address = read_address(data_dir)
            assert new_address is not None
            assert new_address.pid != owner_pid, "a survivor took over"
            for content in sorted(acked)[::10]:
                hits = (await call(second, "recall", query=content, k=3))["hits"]
                assert content in [h["content"] for h in hits]
    assert owner_client_failed, "the killed server's own client saw it die"
    missing = acked - set(stored_contents(data_dir))
    assert not missing, f"{len(missing)} acknowledged writes lost"
    assert len(acked) > 200, "the survivors carried on after the takeover"
