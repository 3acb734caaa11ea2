"""The kill harness: the real server (stdio, real model) is SIGKILLed at random moments of a stream of remember,
remember_many, associate, forget and recall calls, while consolidation passes run every few hundred ms.

After every kill the database is opened the way a restart opens it and checked: every acknowledged write is
there, nothing acknowledged as forgotten is back, every acknowledged link between surviving memories exists.
The next server start then reports that both indexes hold exactly the stored memories and recall finds a
known memory. HEBBIAN_SOAK=1 runs 500 kills instead of 50.
"""

import json
import os
import random
import signal
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pytest
from mcp import Client

from tests.conftest import SOAK
from tests.helpers import server_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KILLS = 500 if SOAK else int(os.environ.get("HEBBIAN_KILLS", "50"))
WORDS = ["river", "lantern", "copper", "meadow", "falcon", "harbor", "violet", "quartz", "ember", "willow", "cedar"]
# Consolidation passes every 0.3 s, so kills land in them too; the vector index saved every 20 changes, so
# kills land between and during saves.
FAST = {
    "HEBBIAN_MEMORY_PLASTICITY_PASS_MINUTES": "0.005",
    "HEBBIAN_MEMORY_INDEX_SAVE_EVERY_CHANGES": "20",
    "HEBBIAN_MEMORY_LOG_LEVEL": "WARNING",
}


@dataclass
class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    present: dict[int, str] = field(default_factory=dict[int, str])  # id -> content
    forgotten: set[int] = field(default_factory=set[int])
    links: set[tuple[int, int]] = field(default_factory=set[tuple[int, int]])
    maybe_stored: set[str] = field(default_factory=set[str])  # contents whose remember got no answer
    maybe_forgotten: set[int] = field(default_factory=set[int])
    writes: int = 0
    problems: list[str] = field(default_factory=list[str])


async def answer(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool call's structured result ({} for an error)."""
    result = await client.call_tool(tool, args)
    return {} if result.is_error else dict(result.structured_content or {})


async def owner_pid(data_dir: Path) -> int:
    """The server's pid, from owner.json once it has taken the data dir."""
    while True:
        try:
            return int(json.loads((data_dir / "owner.json").read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError):
            await anyio.sleep(0.01)


def tag(rng: random.Random) -> str:
    """A made-up word: each memory is told apart by its keywords, not only its near-identical wording."""
    return "".join(rng.choices(string.ascii_lowercase, k=8))


async def stream(client: Client, ledger: Ledger, rng: random.Random, cycle: int) -> None:
    """Calls until the server dies; each answered write goes into the ledger."""
    n = 0
    while True:
        n += 1
        roll = rng.random()
        ids = list(ledger.present)
        if roll < 0.45 or len(ids) < 4:
            content = f"note {cycle}-{n} about the {rng.choice(WORDS)} called {tag(rng)}"
            ledger.maybe_stored.add(content)
            stored = await answer(client, "remember", {"content": content})
            ledger.present[stored["id"]] = content
            ledger.maybe_stored.discard(content)
            ledger.writes += 1
        elif roll < 0.55:
            contents = [f"batch {cycle}-{n}-{i} on the {rng.choice(WORDS)} called {tag(rng)}" for i in range(3)]
            ledger.maybe_stored.update(contents)
            stored = await answer(client, "remember_many", {"memories": [{"content": c} for c in contents]})
            items: list[dict[str, Any]] = stored["results"]
            for item, content in zip(items, contents, strict=True):
                ledger.present[item["id"]] = content
                ledger.maybe_stored.discard(content)
            ledger.writes += 3
        elif roll < 0.7:
            a, b = rng.sample(ids, 2)
            result = await client.call_tool("associate", {"source_id": a, "target_ids": [b]})
            if not result.is_error:
                ledger.links.add((min(a, b), max(a, b)))
                ledger.writes += 1
        elif roll < 0.8:
            doomed = rng.choice(ids)
            ledger.maybe_forgotten.add(doomed)
            result = await client.call_tool("forget", {"ids": [doomed]})
            if not result.is_error:
                ledger.present.pop(doomed)
                ledger.forgotten.add(doomed)
                ledger.maybe_forgotten.discard(doomed)
                ledger.writes += 1
        else:
            await client.call_tool("recall", {"query": rng.choice(WORDS), "k": 5})


async def first_checks(client: Client, ledger: Ledger, rng: random.Random) -> None:
    """Right after a restart: both indexes hold exactly the stored memories, and recall finds a known one."""
    stats = await answer(client, "stats", {})
    counts: tuple[int, int, int] = (stats["memories"], stats["vector_index"], stats["keyword_index"])
    if len(set(counts)) != 1 or counts[0] != len(ledger.present):
        ledger.problems.append(f"after restart: memories/vector/keyword {counts}, expected {len(ledger.present)}")
    if ledger.present:
        memory_id, content = rng.choice(sorted(ledger.present.items()))
        hits: list[dict[str, Any]] = (await answer(client, "recall", {"query": content, "k": 3}))["hits"]
        if memory_id not in [h["id"] for h in hits]:
            ledger.problems.append(f"after restart: recall of {content!r} did not find memory {memory_id}")


def verify(database: Path, ledger: Ledger) -> None:
    """Open the database as a restart does (replaying its WAL) and hold it against the ledger."""
    conn = duckdb.connect(str(database))
    try:
        rows: dict[int, str] = dict(conn.execute("SELECT id, content FROM memories").fetchall())
        pairs = set(conn.execute("SELECT source_id, target_id FROM associations").fetchall())
    finally:
        conn.close()
    by_content = {content: memory_id for memory_id, content in rows.items()}
    for memory_id in ledger.maybe_forgotten - rows.keys():  # its forget was cut off, but had committed
        ledger.present.pop(memory_id, None)
        ledger.forgotten.add(memory_id)
    for memory_id, content in ledger.present.items():
        if rows.get(memory_id) != content:
            ledger.problems.append(f"acknowledged memory {memory_id} ({content!r}) lost: {rows.get(memory_id)!r}")
    for memory_id in ledger.forgotten & rows.keys():
        ledger.problems.append(f"forgotten memory {memory_id} is back")
    for a, b in ledger.links:
        if a in rows and b in rows and (a, b) not in pairs:
            ledger.problems.append(f"acknowledged link {a}-{b} lost")
    for content in ledger.maybe_stored:  # the call was cut off: stored or not, both are fine; now we know
        if content in by_content:
            ledger.present[by_content[content]] = content
    ledger.maybe_stored.clear()
    ledger.maybe_forgotten.clear()


@pytest.mark.timeout(1800)  # 50 server starts: minutes on a busy 2-core machine, not the suite's usual 300 s
async def test_sigkill_at_random_points_loses_no_acknowledged_write(
    data_dir: Path, record_count: Callable[[str, int], None]
) -> None:
    rng = random.Random(20261122)
    ledger = Ledger()
    kills = 0
    for cycle in range(KILLS):
        # Mostly mid-stream, sometimes during start-up (election, migration, model load, index reconcile).
        # Mid-stream delays count from this start's first acknowledged write, so a slow start (a busy machine)
        # cannot turn every kill into a start-up kill.
        during_start = cycle % 5 == 0
        delay = rng.uniform(0.0, 0.4) if during_start else rng.uniform(0.0, 1.7)
        died = anyio.Event()

        async def killer(
            delay: float = delay,
            died: anyio.Event = died,
            during_start: bool = during_start,
            before: int = ledger.writes,
        ) -> None:
            pid = await owner_pid(data_dir)
            while not during_start and ledger.writes == before:
                await anyio.sleep(0.02)  # real time: watching a real server process's progress
            await anyio.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            died.set()

        async def session(cycle: int = cycle, died: anyio.Event = died) -> None:
            try:
                params = server_params(data_dir, env=FAST)
                async with Client(params, read_timeout_seconds=60) as client:
                    await first_checks(client, ledger, rng)
                    await stream(client, ledger, rng, cycle)
            except Exception as e:  # the kill cuts the connection mid-call
                if not died.is_set():
                    ledger.problems.append(f"cycle {cycle}: the server failed before it was killed: {e!r}")

        (data_dir / "owner.json").unlink(missing_ok=True)  # a dead owner's file: wait for the new one
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(killer)
                tg.start_soon(session)
        kills += 1
        verify(data_dir / "memory.duckdb", ledger)
        assert not ledger.problems, ledger.problems[:5]

    # A last clean start: everything acknowledged is there and the indexes agree.
    async with Client(server_params(data_dir), read_timeout_seconds=60) as client:
        await first_checks(client, ledger, rng)
    assert not ledger.problems, ledger.problems[:5]
    assert kills == KILLS
    assert ledger.writes > KILLS, "the kills must land among writes"
    record_count("kills", kills)
    record_count("acknowledged writes checked", ledger.writes)
    record_count("memories checked at the end", len(ledger.present))
