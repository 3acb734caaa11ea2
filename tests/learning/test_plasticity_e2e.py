"""Plasticity end to end over MCP (the real client and server in memory, the real model, an injected clock):
memories used together in a session become linked, a later recall of one brings the other along its link,
and after idle time the link decays and is pruned."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from hebbian_memory.app.wiring import build_node
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.sharing.ops import CONSOLIDATE, NoArgs
from hebbian_memory.transport.app import build_server
from tests.helpers import call

pytestmark = pytest.mark.anyio

CODENAME = "The project codename is Falcon."
LAUNCH = "Falcon launches on March 3 from the north pad."
DISTRACTORS = ["The project budget is forty thousand euros.", "The project deadline moved to May.", "Lunch is at noon."]
QUESTION = "What is the project codename?"


async def test_used_together_linked_then_brought_along_then_faded(data_dir: Path, real_embedder: OnnxEmbedder) -> None:
    # Learning made fast for the test (each use +0.5; all of the link's activation counts): the rules are
    # the same as the defaults, only the rates differ.
    settings = load_settings(
        env={},
        overrides={"data_dir": str(data_dir), "plasticity.increment": 0.5, "plasticity.spread_weight": 1.0},
    )
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    node = build_node(settings, clock=clock, embedder=real_embedder)

    async def session() -> Client:
        return Client(build_server(settings, node=node))  # one MCP client connection: one memory session

    async def ask(client: Client) -> list[dict[str, Any]]:
        return (await call(client, "recall", query=QUESTION, k=3))["hits"]

    async with node.running():
        ids: dict[str, int] = {}
        for text in [CODENAME, LAUNCH, *DISTRACTORS]:  # each in its own session: no temporal links among them
            async with await session() as client:
                ids[text] = (await call(client, "remember", content=text))["id"]

        async with await session() as client:
            before = await ask(client)
        assert ids[LAUNCH] not in [h["id"] for h in before], "the launch note does not answer the question by itself"

        for _ in range(2):  # two sessions that keep coming back to both Falcon notes use them together
            async with await session() as client:
                for _ in range(2):
                    hits = (await call(client, "recall", query="Falcon", k=2))["hits"]
                    assert {h["id"] for h in hits} == {ids[CODENAME], ids[LAUNCH]}

        async with await session() as client:
            after = await ask(client)
            stats = await call(client, "stats")
        assert stats["links_by_kind"] == {"coaccess": 1}
        linked = next(h for h in after if h["id"] == ids[LAUNCH])
        assert linked["via"]["memory_id"] == ids[CODENAME]
        assert linked["via"]["kind"] == "coaccess"
        assert linked["via"]["weight"] == pytest.approx(1.0)
        assert after[0]["id"] == ids[CODENAME]
        assert after[0]["reason"] == "direct"

        clock.advance(timedelta(days=60))  # idle: 1.0 * 0.9**60 is under the floor
        report = await node.call(CONSOLIDATE, NoArgs())
        assert report.pruned == 1
        async with await session() as client:
            faded = await ask(client)
            stats = await call(client, "stats")
        assert stats["links"] == 0
        assert ids[LAUNCH] not in [h["id"] for h in faded]
        assert all(h["via"] is None for h in faded)
