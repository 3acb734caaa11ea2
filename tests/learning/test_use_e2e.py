"""Learning from use, end to end over MCP (the real client and server in memory, the real model, an injected
clock): associate makes the linked memory come along with the top hit; a report of use lifts a memory for what
it answers; a report that a memory misled sinks it; a report survives a restart; bad reports get clear errors."""

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from hebbian_memory.app.wiring import build_node
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.sharing.node import Node
from hebbian_memory.transport.app import build_server
from tests.helpers import call, call_error

pytestmark = pytest.mark.anyio

OFFSITE = "The quarterly offsite will be held in Lisbon in early June."
CATERER = "Remember to book the vegetarian caterer Verde & Co for the team."
AGENDA = [
    "Offsite agenda: day one opens with the product roadmap review.",
    "Offsite agenda: the afternoon of day one is for team workshops.",
    "Offsite agenda: day two starts with the customer panel.",
    "Offsite agenda: the hiring plan is discussed on day two.",
    "Offsite agenda: a retrospective closes the second day.",
    "Offsite agenda: travel bookings go through the usual portal.",
    "Offsite agenda: everyone presents one lesson from the quarter.",
    "Offsite agenda: the budget review is on the last morning.",
]
UNRELATED = [
    "The printer on the third floor jams with thick paper.",
    "Our cat prefers the blue blanket on the sofa.",
    "The dentist appointment moved to Thursday afternoon.",
    "The garden hose leaks near the tap.",
    "I started reading a novel about lighthouse keepers.",
    "The bakery on Elm Street sells rye bread on Fridays.",
    "The car needs new winter tyres before December.",
    "My sister plays the cello in a community orchestra.",
    "The wifi password for guests is on the fridge.",
    "The library closes early on public holidays.",
    "The running club meets at seven on Saturdays.",
    "The kitchen tap drips when it is turned halfway.",
    "Houseplants need watering twice a week in summer.",
    "The bike chain squeaks and needs oil.",
    "Tomorrow's weather forecast says light rain.",
    "The recycling goes out on Tuesday evenings.",
    "A new pizza place opened near the station.",
    "The neighbours are renovating their attic.",
    "I want to learn the basics of watercolour painting.",
    "The gym changed its opening hours in winter.",
]


def _settings(data_dir: Path) -> Settings:
    return load_settings(env={}, overrides={"data_dir": str(data_dir)})


@asynccontextmanager
async def _served(
    settings: Settings, clock: ManualClock, embedder: OnnxEmbedder
) -> AsyncGenerator[Callable[[], Client]]:
    node: Node = build_node(settings, clock=clock, embedder=embedder)
    async with node.running():
        yield lambda: Client(build_server(settings, node=node))  # one MCP connection: one memory session


async def _store(client: Client, texts: list[str]) -> dict[str, int]:
    return {text: (await call(client, "remember", content=text))["id"] for text in texts}


async def _ranks(client: Client, query: str, **more: Any) -> tuple[list[int], dict[str, Any]]:
    result = await call(client, "recall", query=query, k=10, min_relevance=0, **more)
    return [h["id"] for h in result["hits"]], result


@pytest.mark.parametrize(
    ("query", "source", "target"),
    [
        ("Where is the offsite happening?", OFFSITE, CATERER),  # the question: the agenda notes lead
        ("Which city hosts the quarterly offsite?", OFFSITE, CATERER),
        ("Who is catering for the team?", CATERER, OFFSITE),
    ],
)
async def test_an_associated_memory_comes_along_right_after_its_partner(
    data_dir: Path, real_embedder: OnnxEmbedder, query: str, source: str, target: str
) -> None:
    """B in the top 3 whenever A is the top hit, and right after A when A is among the first three."""
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    async with _served(_settings(data_dir), clock, real_embedder) as session:
        ids: dict[str, int] = {}
        for text in [OFFSITE, UNRELATED[0], CATERER, *AGENDA, *UNRELATED[1:]]:  # each in its own session
            async with session() as client:
                ids.update(await _store(client, [text]))
        async with session() as client:
            before, _ = await _ranks(client, query)
        lead = before.index(ids[source])
        assert lead < 3, "the question finds the source among its first three hits"
        assert ids[target] not in before[: lead + 2], "without the link the partner does not follow it"
        async with session() as client:
            await call(client, "associate", source_id=ids[OFFSITE], target_ids=[ids[CATERER]])
        async with session() as client:
            after, result = await _ranks(client, query)
        assert after.index(ids[source]) == lead
        assert after.index(ids[target]) == lead + 1
        if lead == 0:
            assert ids[target] in after[:3]
        hit = next(h for h in result["hits"] if h["id"] == ids[target])
        assert hit["reason"] == "linked"
        assert hit["via"]["memory_id"] == ids[source]
        # At the default threshold too (where the source passes it): the partner is there for its link, not for
        # its own match.
        async with session() as client:
            default = await call(client, "recall", query=query, k=10)
        shown = [h["id"] for h in default["hits"]]
        if lead == 0:
            assert shown[:2] == [ids[source], ids[target]]


async def test_use_lifts_a_memory_misled_sinks_one_and_both_survive_a_restart(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    settings = _settings(data_dir)
    query = "What do we know about the offsite agenda on day two?"
    async with _served(settings, clock, real_embedder) as session:
        async with session() as client:
            ids = await _store(client, [*AGENDA, OFFSITE, *UNRELATED])
        async with session() as client:
            before, _ = await _ranks(client, query)
            wanted = ids[AGENDA[3]]  # the hiring plan, on day two
            assert before.index(wanted) >= 1, "the test needs a memory that does not lead yet"
            misleading = before[0]
            # The assistant relied on the hiring-plan note and found the top hit beside the point.
            await call(client, "recall", query="something else entirely", used=[wanted], misled=[misleading])
            after, _ = await _ranks(client, query)
        assert after.index(wanted) < before.index(wanted)
        assert after.index(misleading) > 0
    # A new process's view: from the database.
    async with _served(settings, clock, real_embedder) as session, session() as client:
        again, _ = await _ranks(client, query)
    assert again.index(wanted) == after.index(wanted)
    assert again.index(misleading) == after.index(misleading)


async def test_remember_with_used_links_the_new_memory_to_its_sources(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    async with _served(_settings(data_dir), clock, real_embedder) as session:
        async with session() as client:
            ids = await _store(client, [OFFSITE, *UNRELATED])
        summary = "Decision: we fly on the 4th and stay at the Alfama hotel."
        async with session() as client:
            made = (await call(client, "remember", content=summary, used=[ids[OFFSITE]]))["id"]
        async with session() as client:
            hits, result = await _ranks(client, "Which city hosts the quarterly offsite?")
        assert hits[0] == ids[OFFSITE]
        assert hits[1] == made, "what was written from the top hit comes right after it"
        hit = next(h for h in result["hits"] if h["id"] == made)
        assert hit["reason"] == "linked"
        assert hit["via"]["memory_id"] == ids[OFFSITE]


async def test_bad_reports_get_clear_errors_and_change_nothing(data_dir: Path, real_embedder: OnnxEmbedder) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    async with _served(_settings(data_dir), clock, real_embedder) as session, session() as client:
        ids = await _store(client, [OFFSITE, CATERER])
        both = await call_error(client, "recall", query="offsite", used=[ids[OFFSITE]], misled=[ids[OFFSITE]])
        assert "both in used and in misled" in both
        wrong_type = await call_error(client, "recall", query="offsite", used=["1"])
        assert "used" in wrong_type
        unknown = await call_error(client, "remember", content="A new note.", used=[9999])
        assert "not stored in this project" in unknown
        assert "Nothing was stored" in unknown
        listed, _ = await _ranks(client, "A new note.")
        assert len(listed) == 2, "the refused remember stored nothing"
        # On recall an unknown id does not cost the recall: the note says it was ignored.
        hits, result = await _ranks(client, "offsite", used=[ids[OFFSITE], 9999])
        assert hits
        assert "9999" in result["note"]
        assert "ignored" in result["note"]


async def test_a_report_naming_many_memories_links_only_a_few_of_them(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    settings = _settings(data_dir)
    async with _served(settings, clock, real_embedder) as session:
        async with session() as client:
            ids = await _store(client, UNRELATED)
        async with session() as client:
            await call(client, "recall", query="the house", used=list(ids.values()))
            stats = await call(client, "stats")
    window = settings.plasticity.use_window
    # The 20 notes were stored in one session (19 temporal links); the report links the pairs of 8 of them (28),
    # some of which were temporal links before: not the 190 pairs of all 20.
    assert stats["links_by_kind"]["coaccess"] == window * (window - 1) // 2
