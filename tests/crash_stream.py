"""The kill harness's stream and ledger: the calls it sends the server (remember, remember_many, associate,
forget, recall), what the server acknowledged, and the check of a database against it after a kill."""

import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import duckdb
from mcp import Client
from mcp_types import CallToolResult

from tests.helpers import error_text

WORDS = ["river", "lantern", "copper", "meadow", "falcon", "harbor", "violet", "quartz", "ember", "willow", "cedar"]
# What a tool error says when the disk refused a write, and when it adds that the call changed nothing.
FAULT_SAYS = ("The disk is full", "The data dir is read-only", "The disk reported an error")
NOTHING_DONE_SAYS = ("Nothing was changed", "changed nothing", "Nothing was stored", "Nothing was forgotten")


@dataclass
class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    present: dict[int, str] = field(default_factory=dict[int, str])  # id -> content
    forgotten: set[int] = field(default_factory=set[int])
    links: set[tuple[int, int]] = field(default_factory=set[tuple[int, int]])
    maybe_stored: set[str] = field(default_factory=set[str])  # contents whose remember got no answer
    maybe_forgotten: set[int] = field(default_factory=set[int])
    refused: set[str] = field(default_factory=set[str])  # contents a remember was refused with "nothing changed"
    writes: int = 0
    faults_expected: bool = False  # a variant that makes the disk refuse writes
    faults_met: int = 0  # calls refused with a storage fault
    problems: list[str] = field(default_factory=list[str])


async def answer(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool call's structured result ({} for an error)."""
    result = await client.call_tool(tool, args)
    return {} if result.is_error else dict(result.structured_content or {})


def nothing_done(ledger: Ledger, tool: str, result: CallToolResult) -> bool:
    """For a failed write: whether it says it changed nothing. Only a storage fault, in a variant that makes
    one, may fail a write; a fault that does not say so leaves the outcome open (the ledger's maybe sets)."""
    text = error_text(result)
    if not ledger.faults_expected or not any(s in text for s in FAULT_SAYS):
        ledger.problems.append(f"{tool} failed: {text[:300]}")
        return False
    ledger.faults_met += 1
    return any(s in text for s in NOTHING_DONE_SAYS)


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


async def remember(client: Client, ledger: Ledger, contents: list[str]) -> None:
    ledger.maybe_stored.update(contents)
    if len(contents) == 1:
        result = await client.call_tool("remember", {"content": contents[0]})
    else:
        result = await client.call_tool("remember_many", {"memories": [{"content": c} for c in contents]})
    if result.is_error:
        if nothing_done(ledger, "remember", result):
            ledger.maybe_stored.difference_update(contents)
            ledger.refused.update(contents)
        return
    stored = dict(result.structured_content or {})
    items: list[dict[str, Any]] = stored["results"] if len(contents) > 1 else [stored]
    for item, content in zip(items, contents, strict=True):
        ledger.present[item["id"]] = content
        ledger.maybe_stored.discard(content)
    ledger.writes += len(contents)


async def associate(client: Client, ledger: Ledger, a: int, b: int) -> None:
    result = await client.call_tool("associate", {"source_id": a, "target_ids": [b]})
    if not result.is_error:
        ledger.links.add((min(a, b), max(a, b)))
        ledger.writes += 1
    elif ledger.faults_expected:
        nothing_done(ledger, "associate", result)


async def forget(client: Client, ledger: Ledger, doomed: int) -> None:
    ledger.maybe_forgotten.add(doomed)
    result = await client.call_tool("forget", {"ids": [doomed]})
    if not result.is_error:
        ledger.present.pop(doomed)
        ledger.forgotten.add(doomed)
        ledger.maybe_forgotten.discard(doomed)
        ledger.writes += 1
        said: dict[str, Any] = dict(result.structured_content or {})
        note = str(said.get("note") or "")
        ledger.faults_met += any(s in note for s in FAULT_SAYS)  # committed; its clean-up met the fault
    elif nothing_done(ledger, "forget", result):
        ledger.maybe_forgotten.discard(doomed)


async def stream(client: Client, ledger: Ledger, rng: random.Random, cycle: int) -> None:
    """Calls until the server dies; each answered write goes into the ledger."""
    n = 0
    while True:
        n += 1
        roll = rng.random()
        ids = list(ledger.present)
        if roll < 0.45 or len(ids) < 4:
            await remember(client, ledger, [f"note {cycle}-{n} about the {rng.choice(WORDS)} called {tag(rng)}"])
        elif roll < 0.55:
            contents = [f"batch {cycle}-{n}-{i} on the {rng.choice(WORDS)} called {tag(rng)}" for i in range(3)]
            await remember(client, ledger, contents)
        elif roll < 0.7:
            await associate(client, ledger, *rng.sample(ids, 2))
        elif roll < 0.8:
            await forget(client, ledger, rng.choice(ids))
        else:
            result = await client.call_tool("recall", {"query": rng.choice(WORDS), "k": 5})
            if result.is_error:  # reads go on whatever the disk does
                ledger.problems.append(f"recall failed: {error_text(result)[:300]}")


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
    for content in ledger.refused & by_content.keys():
        ledger.problems.append(f"a remember refused with 'nothing changed' stored {content!r}")
    for content in ledger.maybe_stored:  # the call was cut off: stored or not, both are fine; now we know
        if content in by_content:
            ledger.present[by_content[content]] = content
    ledger.maybe_stored.clear()
    ledger.maybe_forgotten.clear()
