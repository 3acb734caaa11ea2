"""A disk that refuses writes (full, read-only) through the real MCP client and server: the call says so, the
server stays up (or starts, when the disk refuses already) and keeps answering recall, a refused call changed
nothing, and writes resume once the disk takes them again, with nothing acknowledged lost.

The full disk is a small tmpfs (mounting needs root; elsewhere the test is skipped). The read-only data dir is
the immutable flag (``chattr +i``) as root, which root cannot write through, or a plain chmod for other users.
"""

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import duckdb
import pytest
from mcp import Client

from hebbian_memory.sharing.election import read_address
from tests.disks import read_only, small_tmpfs
from tests.helpers import call, call_error, error_text, server_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The flush loop saves the vector index after every change, so a full disk meets it within its 5 s tick.
# Recall skips no near-duplicate, so a recall lists every memory.
SETTINGS = {
    "HEBBIAN_MEMORY_INDEX_SAVE_EVERY_CHANGES": "1",
    "HEBBIAN_MEMORY_RECALL_DUPLICATE_COSINE": "1.0",
    "HEBBIAN_MEMORY_LOG_LEVEL": "WARNING",
}
DISK_MB = 12
DEADLINE_S = 60
WORDS = ["copper", "lantern", "quartz", "meadow", "violet", "harbor", "falcon", "ember", "willow", "cedar", "orchid"]


def note(n: int, when: str) -> str:
    return f"{when}: {WORDS[n % len(WORDS)]} {WORDS[(n * 5 + 3) % len(WORDS)]} number {n}."


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 12 MB tmpfs, to fill up."""
    with small_tmpfs(tmp_path / "disk", DISK_MB) as mount_point:
        yield mount_point


def fill(disk: Path) -> Path:
    """Write a file until the disk is full, to the last partial block; returns it (remove it to free the space)."""
    filler = disk / "filler"
    for chunk in (1 << 16, 512):
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012 -- the loop fills the disk
                while True:
                    os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)
        assert full.value.errno == errno.ENOSPC, full.value
    return filler


def server(data_dir: Path, home: Path) -> Client:
    """The real server over stdio, its home (user cache) off the small disk."""
    return Client(server_params(data_dir, env={**SETTINGS, "HOME": str(home)}), read_timeout_seconds=120)


async def all_contents(client: Client) -> dict[int, str]:
    hits = (await call(client, "recall", query="anything at all", k=100, min_relevance=0))["hits"]
    return {hit["id"]: hit["content"] for hit in hits}


def stored_contents(data_dir: Path) -> set[str]:
    """What the database file holds, read the way the next start reads it."""
    with duckdb.connect(str(data_dir / "memory.duckdb"), read_only=True) as conn:
        return {str(row[0]) for row in conn.execute("SELECT content FROM memories").fetchall()}


async def test_a_full_disk_is_reported_the_server_stays_up_and_nothing_acknowledged_is_lost(
    small_disk: Path, tmp_path: Path
) -> None:
    data_dir = small_disk / "data"
    acknowledged: dict[int, str] = {}
    async with server(data_dir, tmp_path) as client:
        for n in range(3):
            content = note(n, "Stored before the disk filled up")
            acknowledged[(await call(client, "remember", content=content))["id"]] = content
        address = read_address(data_dir)
        assert address is not None
        filler = fill(small_disk)

        # Until the flush loop has met the full disk, a remember may still fit (then it is acknowledged) or fail
        # itself; once it has, the next remember is refused with the fault the background save met.
        refused, n = "", 0
        with anyio.fail_after(DEADLINE_S):
            while "This call was not carried out" not in refused:
                n += 1
                content = note(n + 3, f"Sent while the disk was full, attempt {n}")
                result = await client.call_tool("remember", {"content": content})
                if result.is_error:
                    refused = error_text(result)
                    assert "The disk is full" in refused, refused
                    assert str(small_disk) in refused, "the message names where"
                else:
                    acknowledged[dict(result.structured_content or {})["id"]] = content
                await all_contents(client)  # recall answers, and gives the flush loop something to write
                await anyio.sleep(0.5)
        assert "Free space" in refused, "it says what to do"
        os.kill(address.pid, 0)  # still alive after its flush loop hit the full disk
        assert await all_contents(client) == acknowledged, "recall still answers, with everything acknowledged"

        filler.unlink()
        content = "After space was freed, this note about the violet harbor is stored."
        acknowledged[(await call(client, "remember", content=content))["id"]] = content
        assert await all_contents(client) == acknowledged
    assert stored_contents(data_dir) == set(acknowledged.values())


async def test_a_read_only_data_dir_still_forgets_says_what_is_pending_and_recovers(data_dir: Path) -> None:
    secret = "The locker code at the gym is 4711, falcon ember."
    async with server(data_dir, data_dir.parent) as client:
        kept = await call(client, "remember", content="The cedar willow talk is on Friday.")
        doomed = await call(client, "remember", content=secret)
        with read_only(data_dir):
            forgotten = await call(client, "forget", ids=[doomed["id"]])
            assert forgotten["forgotten"] == 1, "the delete committed, so forget succeeds"
            assert "read-only" in forgotten["note"], forgotten["note"]
            assert "pending" in forgotten["note"], forgotten["note"]
            assert await all_contents(client) == {kept["id"]: "The cedar willow talk is on Friday."}
            refused = await call_error(client, "remember", content="Written while the data dir is read-only.")
            assert "read-only" in refused, refused
            assert "changed nothing" in refused, refused
        again = await call(client, "remember", content="Written once the data dir is writable again.")
        assert set(await all_contents(client)) == {kept["id"], again["id"]}
    assert stored_contents(data_dir) == {
        "The cedar willow talk is on Friday.",
        "Written once the data dir is writable again.",
    }
    leftovers = [p for p in data_dir.iterdir() if p.name.startswith("memory.duckdb")]
    assert all(b"locker code" not in p.read_bytes() for p in leftovers), "the purge ran once the dir was writable"


async def published(data_dir: Path) -> None:
    """Wait until the owner's address is in owner.json (failing after DEADLINE_S)."""
    with anyio.fail_after(DEADLINE_S):
        while read_address(data_dir) is None:
            await anyio.sleep(0.1)


async def reads_on_and_writes_refused(client: Client, before: str) -> str:
    """On a full disk: recall lists what was stored before, and remember is refused saying why; its message."""
    with anyio.fail_after(DEADLINE_S):
        assert list((await all_contents(client)).values()) == [before], "recall answers on a full disk"
        refused = await call_error(client, "remember", content="Sent while the disk was full.")
    assert "The disk is full" in refused, refused
    return refused


async def test_a_server_started_on_a_full_disk_serves_recall_refuses_writes_and_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    data_dir = small_disk / "data"
    before = "Stored before the disk filled up: the quartz meadow key is under the mat."
    async with server(data_dir, tmp_path) as client:
        await call(client, "remember", content=before)
    filler = fill(small_disk)

    async with server(data_dir, tmp_path) as client:
        refused = await reads_on_and_writes_refused(client, before)
        assert str(small_disk) in refused, "the message names where"
        assert "Free space" in refused, "it says what to do"

        filler.unlink()
        after = "Stored once space was freed: the orchid falcon talk is on Monday."
        await call(client, "remember", content=after)
        assert sorted((await all_contents(client)).values()) == sorted([before, after])
        await published(data_dir)  # the owner tries again every second to publish its address

    assert stored_contents(data_dir) == {before, after}, "kept for the next start"
    with duckdb.connect(str(data_dir / "memory.duckdb"), read_only=True) as conn:
        row = conn.execute("SELECT session_id FROM memories WHERE content = ?", [after]).fetchone()
    assert row is not None
    assert row[0] is not None, "the session got its row once there was room"


async def test_a_server_joining_an_owner_on_a_full_disk_serves_recall_refuses_writes_and_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    """The second server forwards to the first, which holds the data dir; the joining client's session row,
    refused by the full disk, comes once there is room."""
    data_dir = small_disk / "data"
    before = "Stored before the disk filled up: the cedar lantern code is 2231."
    async with server(data_dir, tmp_path) as client:
        await call(client, "remember", content=before)
    # Filled while the owner has written nothing since its start (its files have no room left in their last
    # pages), so the joining client's first call needs new room for its session row.
    async with server(data_dir, tmp_path):
        await published(data_dir)
        filler = fill(small_disk)
        async with server(data_dir, tmp_path) as client:
            await reads_on_and_writes_refused(client, before)
            filler.unlink()
            after = "Stored once space was freed: the ember willow meeting moved to noon."
            await call(client, "remember", content=after)
            assert sorted((await all_contents(client)).values()) == sorted([before, after])
    assert stored_contents(data_dir) == {before, after}


async def test_a_server_started_on_a_read_only_data_dir_serves_recall_refuses_writes_and_recovers(
    data_dir: Path,
) -> None:
    """Not even the owner's socket can be made in the data dir: the owner listens on loopback TCP instead."""
    before = "The cedar willow talk is on Friday."
    async with server(data_dir, data_dir.parent) as client:
        await call(client, "remember", content=before)
    with contextlib.ExitStack() as writable_again:
        writable_again.enter_context(read_only(data_dir))
        async with server(data_dir, data_dir.parent) as client:
            with anyio.fail_after(DEADLINE_S):
                assert list((await all_contents(client)).values()) == [before], "recall answers"
                refused = await call_error(client, "remember", content="Written while the data dir is read-only.")
            assert "read-only" in refused, refused
            assert "Nothing was changed" in refused, refused

            writable_again.close()
            after = "Written once the data dir is writable again."
            await call(client, "remember", content=after)
            assert sorted((await all_contents(client)).values()) == sorted([before, after])
            await published(data_dir)  # the owner tries again every second to publish its address
    assert stored_contents(data_dir) == {before, after}
