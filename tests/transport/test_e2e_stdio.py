"""End to end: the real server as a subprocess, the real model, driven by the mcp client over stdio."""

from datetime import datetime
from pathlib import Path

import pytest

from hebbian_memory.retrieval.text import terms
from tests.helpers import FIXED_TIME, call, call_error, stdio_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FACTS = [
    "I adopted a golden retriever puppy named Biscuit last spring.",
    "The quarterly budget review with finance is every first Monday.",
    "Maria prefers her coffee black with no sugar.",
    "Our production database runs PostgreSQL 16 on a dedicated server in Frankfurt.",
    "The kids' swimming lessons moved to Thursday evenings.",
]


async def all_ids(client: object) -> set[int]:
    # Every memory, however weak its match: min_relevance 0 turns the relevance threshold off.
    result = await call(client, "recall", query="anything at all", k=100, min_relevance=0)  # type: ignore[arg-type]
    return {hit["id"] for hit in result["hits"]}


async def test_recall_finds_a_memory_by_meaning_when_no_words_are_shared(data_dir: Path) -> None:
    query = "Which animal does the user own?"
    assert not set(terms(query)) & set(terms(FACTS[0])), "the query must share no index term with the fact"
    async with stdio_client(data_dir) as client:
        ids = [(await call(client, "remember", content=fact))["id"] for fact in FACTS]
        hits = (await call(client, "recall", query=query, k=3))["hits"]
    assert hits[0]["id"] == ids[0]
    assert hits[0]["content"] == FACTS[0]
    assert hits[0]["parts"]["lexical"] == 0.0
    assert hits[0]["parts"]["cosine"] > 0.2


async def test_recall_finds_an_exact_keyword_and_reports_score_parts(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        for fact in FACTS:
            await call(client, "remember", content=fact)
        hits = (await call(client, "recall", query="Frankfurt", k=2))["hits"]
        budgeted = await call(client, "recall", query="Frankfurt", k=10, token_budget=len(hits[0]["content"]) // 4 + 1)
    assert [h["id"] for h in budgeted["hits"]][:1] == [hits[0]["id"]]
    assert 0 < budgeted["tokens"] <= len(hits[0]["content"]) // 4 + 1
    assert "Frankfurt" in hits[0]["content"]
    assert hits[0]["parts"]["lexical"] > 0.9  # the query's one rare word: nearly all of its information
    assert set(hits[0]) >= {"id", "content", "tags", "score", "parts", "created_at", "event_time"}


async def test_remembering_the_same_text_twice_returns_the_same_id(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        first = await call(client, "remember", content=FACTS[2], tags=["people"])
        again = await call(client, "remember", content=f"  {FACTS[2]}\n", tags=["coffee"])
        hits = (await call(client, "recall", query="Maria coffee", k=10))["hits"]
    assert first == {"id": first["id"], "created": True, "redacted": []}
    assert again == {"id": first["id"], "created": False, "redacted": []}
    assert [h["id"] for h in hits].count(first["id"]) == 1
    assert hits[0]["tags"] == ["coffee", "people"], "tags of the duplicate are merged into the stored memory"


async def test_tag_and_time_filters_are_exact(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        trip = await call(
            client,
            "remember",
            content="Flew to Lisbon for the conference",
            tags=["travel", "work"],
            event_time="2024-03-10T09:00:00Z",
        )
        beach = await call(
            client, "remember", content="Beach holiday in the Algarve", tags=["travel"], event_time="2024-07-01"
        )
        await call(
            client,
            "remember",
            content="Wrote the conference talk slides",
            tags=["work"],
            event_time="2024-02-20T12:00:00+01:00",
        )

        travel = await call(client, "recall", query="trip", tags=["travel"], k=10)
        both = await call(client, "recall", query="trip", tags=["TRAVEL", "work"], k=10)
        spring = await call(client, "recall", query="trip", since="2024-03-01", until="2024-06-30", k=10)
        inclusive = await call(
            client, "recall", query="trip", since="2024-03-10T09:00:00Z", until="2024-03-10T09:00:00Z", k=10
        )
        after = await call(client, "recall", query="trip", since="2024-07-01T00:00:01Z", k=10)
    assert {h["id"] for h in travel["hits"]} == {trip["id"], beach["id"]}
    assert {h["id"] for h in both["hits"]} == {trip["id"]}
    assert {h["id"] for h in spring["hits"]} == {trip["id"]}
    assert {h["id"] for h in inclusive["hits"]} == {trip["id"]}
    assert after["hits"] == []
    assert travel["hits"][0]["event_time"].startswith("2024-")


async def test_associate_creates_then_strengthens_links_and_rejects_unknown_ids(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        a, b, c = [(await call(client, "remember", content=f))["id"] for f in FACTS[:3]]
        made = (await call(client, "associate", source_id=a, target_ids=[c]))["links"]
        again = (await call(client, "associate", source_id=c, target_ids=[a], strength=0.5))["links"]
        error = await call_error(client, "associate", source_id=a, target_ids=[c, 9999])
        after_error = (await call(client, "associate", source_id=a, target_ids=[c], strength=0.1))["links"]
        in_time = (await call(client, "associate", source_id=a, target_ids=[b], strength=0.5))["links"]
    assert [(link["target_id"], link["weight"], link["created"]) for link in made] == [(c, 0.5, True)]
    assert again[0]["source_id"] == c
    assert again[0]["target_id"] == a
    assert again[0]["weight"] == pytest.approx(0.75)
    assert not again[0]["created"]
    assert "9999" in error
    assert "recall" in error
    assert after_error[0]["weight"] == pytest.approx(0.775), "the rejected call must not have strengthened a-c"
    # a and b were stored one after the other, so a temporal link (0.5) joins them already.
    assert (in_time[0]["created"], in_time[0]["kind"]) == (False, "explicit")
    assert in_time[0]["weight"] == pytest.approx(0.75)


async def test_forget_is_final_across_restarts_and_index_rebuilds(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        secret = await call(client, "remember", content="My locker code is 4417", tags=["private"])
        keep = await call(client, "remember", content="My locker is on the second floor", tags=["private"])
        await call(client, "associate", source_id=secret["id"], target_ids=[keep["id"]])
        gone = await call(client, "forget", ids=[secret["id"]])
        assert gone == {"forgotten": 1, "ids": [secret["id"]], "note": None}, "nothing left pending"
        assert secret["id"] not in await all_ids(client)
        assert "4417" not in str(await call(client, "recall", query="locker code 4417", k=10))

    async with stdio_client(data_dir) as client:
        assert await all_ids(client) == {keep["id"]}
        assert await call_error(client, "forget", ids=[secret["id"]])

    (data_dir / "vectors.usearch").unlink()
    async with stdio_client(data_dir) as client:
        assert await all_ids(client) == {keep["id"]}
        hits = (await call(client, "recall", query="locker code", k=10))["hits"]
        again = await call(client, "remember", content="My locker code is 4417")
    assert [h["id"] for h in hits] == [keep["id"]]
    assert again["created"]
    assert again["id"] != secret["id"], "a forgotten memory is not resurrected by id"


async def test_forget_by_tags_and_date_deletes_only_what_matches_all(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        old = await call(client, "remember", content="Temporary note about the build cache", tags=["scratch"])
        other = await call(client, "remember", content="Design decision: use DuckDB", tags=["decision"])
        none_yet = await call(client, "forget", tags=["scratch"], before="2000-01-01")
        by_tag = await call(client, "forget", tags=["scratch"])
        remaining = await all_ids(client)
    assert none_yet["forgotten"] == 0
    assert by_tag == {"forgotten": 1, "ids": [old["id"]], "note": None}
    assert remaining == {other["id"]}


async def test_a_restarted_server_keeps_memories_tags_metadata_and_links(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        ids = [
            (await call(client, "remember", content=f, tags=[f"t{i}"], metadata={"n": i}, importance=0.9))["id"]
            for i, f in enumerate(FACTS)
        ]
        await call(client, "associate", source_id=ids[0], target_ids=[ids[2]])
    async with stdio_client(data_dir) as client:
        hits = {h["id"]: h for h in (await call(client, "recall", query="anything", k=100, min_relevance=0))["hits"]}
        link = (await call(client, "associate", source_id=ids[0], target_ids=[ids[2]], strength=0.5))["links"][0]
        pg = (await call(client, "recall", query="which database engine runs in production", k=1))["hits"]
    assert set(hits) == set(ids)
    for i, memory_id in enumerate(ids):
        assert hits[memory_id]["content"] == FACTS[i]
        assert hits[memory_id]["tags"] == [f"t{i}"]
        assert hits[memory_id]["metadata"] == {"n": i}
        # The server's stopped clock (tests.helpers.FIXED_TIME): the link below cannot decay between the runs,
        # however slow the machine.
        assert datetime.fromisoformat(hits[memory_id]["created_at"]) == datetime.fromisoformat(FIXED_TIME)
    assert not link["created"]
    assert link["weight"] == pytest.approx(0.75)
    assert pg[0]["id"] == ids[3]


async def test_bad_input_gets_a_clear_error_and_changes_nothing(data_dir: Path) -> None:
    async with stdio_client(data_dir) as client:
        kept = await call(client, "remember", content="The only memory", tags=["x"])
        errors = {
            "empty": await call_error(client, "remember", content="   "),
            "huge": await call_error(client, "remember", content="x" * 20_001),
            "nul": await call_error(client, "remember", content="a\x00b"),
            "importance": await call_error(client, "remember", content="valid text", importance=3),
            "date": await call_error(client, "remember", content="valid text", event_time="next tuesday"),
            "k": await call_error(client, "recall", query="memory", k=1000),
            "since": await call_error(client, "recall", query="memory", since="2024-13-45"),
            "order": await call_error(client, "recall", query="memory", since="2025-01-01", until="2024-01-01"),
            "budget": await call_error(client, "recall", query="memory", token_budget=-5),
            "type": await call_error(client, "recall", query=["not", "a", "string"]),
            "tags": await call_error(client, "remember", content="valid text", tags="family"),
            "int": await call_error(client, "recall", query="memory", k="ten"),
            "missing": await call_error(client, "remember_many", memories=[{"content": "ok"}, {"contnt": "typo"}]),
            "self": await call_error(client, "associate", source_id=kept["id"], target_ids=[kept["id"]]),
            "unknown": await call_error(client, "forget", ids=[kept["id"], 424242]),
            "nothing": await call_error(client, "forget"),
            "negative": await call_error(client, "forget", ids=[-1]),
        }
        still = await all_ids(client)
    assert still == {kept["id"]}
    assert "limit is 20000" in errors["huge"]
    assert "Split" in errors["huge"]
    assert "ISO 8601" in errors["date"]
    assert "ISO 8601" in errors["since"]
    assert "between 1 and 100" in errors["k"]
    assert "token_budget" in errors["budget"]
    assert "424242" in errors["unknown"]
    assert "ids, tags" in errors["nothing"]
    # Schema errors name the argument and the JSON type to send, without pydantic's text and links.
    assert 'tags must be a list of strings, e.g. ["family"] (got "family")' in errors["tags"]
    assert "k must be an integer" in errors["int"]
    assert "query must be a string" in errors["type"]
    assert "memories[1].content is required" in errors["missing"]
    assert not any("pydantic" in e or "http" in e for e in errors.values())
    assert all("Nothing was done" in errors[key] for key in ("tags", "int", "type", "missing"))
    assert all(errors.values())


async def test_the_console_script_serves_four_annotated_tools_with_instructions(
    data_dir: Path, server_backend: str
) -> None:
    import shutil
    import sys

    from mcp import Client

    from tests.helpers import server_params

    script = Path(sys.executable).with_name("hebbian-memory")
    params = server_params(data_dir)
    params = params.model_copy(
        update={"command": str(script) if script.exists() else shutil.which("hebbian-memory"), "args": params.args[2:]}
    )
    async with Client(params, read_timeout_seconds=120) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        instructions = client.instructions
        stored = await call(client, "remember", content="The console script works")
        batch = await call(
            client,
            "remember_many",
            memories=[{"content": "Bulk one: the boiler was serviced"}, {"content": "The console script works"}],
        )
        found = (await call(client, "recall", query="when was the heating checked", k=1))["hits"]
    assert set(tools) == {"remember", "remember_many", "recall", "associate", "forget", "stats"}
    assert [r["created"] for r in batch["results"]] == [True, False]
    assert batch["results"][1]["id"] == stored["id"]
    assert found[0]["id"] == batch["results"][0]["id"]
    assert tools["recall"].annotations is not None
    assert tools["recall"].annotations.read_only_hint
    assert tools["forget"].annotations is not None
    assert tools["forget"].annotations.destructive_hint
    assert all(tool.description and tool.output_schema for tool in tools.values())
    # Descriptions are prose: no source line breaks or indentation inside a paragraph.
    assert all("\n" not in (tool.description or "") and "  " not in (tool.description or "") for tool in tools.values())
    assert instructions
    assert "recall" in instructions
    assert stored["created"]
    assert (data_dir / "memory.duckdb").exists() == (server_backend == "duckdb")  # else it is in PostgreSQL
