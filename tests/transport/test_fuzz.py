"""Property-based fuzzing of every tool through the real MCP client and server (in memory, real model).

Each case calls one tool with arguments mixing valid values, wrong types, huge and hostile strings, extreme
numbers, unknown ids and bad dates. The answer must be a correct result or a clear tool error, the server must
keep answering, and a rejected call must leave the stored memory byte for byte as it was (compared through
a full export before and after). HEBBIAN_SOAK=1 runs many more cases.
"""

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import CallToolResult

from hebbian_memory.app.wiring import build_node
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.models import (
    AssociateResult,
    ForgetResult,
    RecallResult,
    RememberManyResult,
    RememberResult,
    StatsResult,
)
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.transport.app import build_server
from tests.conftest import SOAK
from tests.helpers import error_text, shared_model_cache

CASES = 3000 if SOAK else 250
SEEDS = [
    "Ana prefers green tea in the morning.",
    "The staging server is called mercury.",
    "Deploys happen on Tuesdays after the stand-up.",
    "The quarterly report is due on the first Friday of April.",
    "Bob's bike was stolen from the station on 3 May 2024.",
]
OUTPUTS: dict[str, type[Any]] = {
    "remember": RememberResult,
    "remember_many": RememberManyResult,
    "recall": RecallResult,
    "associate": AssociateResult,
    "forget": ForgetResult,
    "stats": StatsResult,
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
hostile = st.sampled_from(
    [
        "",
        "   ",
        "'; DROP TABLE memories; --",
        '" OR 1=1 --',
        '{"a": [1, ',
        "\\",
        "%_%",
        "a\x00b",
        "bell\x07",
        "\ud800",
        "x\udfffy",
        "🙂" * 30,
        "NULL",
        "$1 ? :name",
        "\u202etxt.exe",
        "line\r\nbreak",
    ]
)
texts = st.one_of(
    st.text(max_size=300),
    hostile,
    st.integers(19_990, 20_010).map(lambda n: "y" * n),  # around the content limit
    st.just("z" * 300_000),
)
dates = st.one_of(
    st.none(),
    st.sampled_from(["2024-05-01", "2024-05-01T14:30:00+02:00", "2024-02-30", "yesterday", "0001-01-01", "-1"]),
    st.sampled_from(["2024-05-01T25:00", "", "9999-12-31", "2024-05-01T14:30:00Z", "0001-01-01T00:00+01:00"]),
    st.text(max_size=25),
    junk,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, 1, -1, 0.5, 1.0000001, 1e308, 2**63, 2**64]),
    junk,
)


def id_lists(known: list[int]) -> st.SearchStrategy[Any]:
    one = st.one_of(st.sampled_from(known), st.integers(min_value=-(2**65), max_value=2**65), st.just(987_654))
    return st.one_of(st.lists(one, max_size=6), st.lists(one, min_size=1001, max_size=1002), junk)


def tags() -> st.SearchStrategy[Any]:
    tag = st.one_of(st.sampled_from(["ops", "Work", "food"]), texts)
    return st.one_of(st.none(), st.lists(tag, max_size=4), st.lists(tag, min_size=33, max_size=34), junk)


def metadata() -> st.SearchStrategy[Any]:
    plain = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=8,
    )
    huge = st.just({"blob": "m" * 20_000})
    return st.one_of(st.none(), st.dictionaries(st.text(max_size=10), plain, max_size=4), huge, junk)


def _with_used(memory: dict[str, Any], used: Any) -> dict[str, Any]:
    return memory if used is None else {**memory, "used": used}


def calls(known: list[int]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    memory = st.fixed_dictionaries(
        {"content": texts},
        optional={"tags": tags(), "metadata": metadata(), "importance": numbers, "event_time": dates},
    )
    scope = {"project": st.one_of(st.sampled_from(["default", "other"]), texts, junk), "all_projects": junk}
    tools: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        # remember also takes a use report; remember_many's items do not
        "remember": st.builds(_with_used, memory, st.one_of(st.none(), id_lists(known))),
        "remember_many": st.fixed_dictionaries(
            {
                "memories": st.one_of(
                    st.lists(memory, max_size=3), junk, st.lists(st.just({"content": "x"}), min_size=1001)
                )
            }
        ),
        "recall": st.fixed_dictionaries(
            {"query": texts},
            optional={
                "k": numbers,
                "tags": tags(),
                "since": dates,
                "until": dates,
                "token_budget": numbers,
                "used": id_lists(known),
                "misled": id_lists(known),
                **scope,
            },
        ),
        "associate": st.fixed_dictionaries(
            {"source_id": st.one_of(st.sampled_from(known), numbers), "target_ids": id_lists(known)},
            optional={"strength": numbers},
        ),
        "forget": st.fixed_dictionaries(
            {}, optional={"ids": id_lists([987_654]), "tags": tags(), "before": dates, **scope}
        ),
        "stats": st.fixed_dictionaries({}, optional={"unexpected": junk}),
    }
    return st.one_of(*(st.tuples(st.just(name), args) for name, args in tools.items()))


@pytest.fixture
def live(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> Iterator[tuple[Callable[..., Any], MemoryService, dict[str, dict[str, Any]]]]:
    """A running node and one MCP client session, driven from this (synchronous) test through a portal; and the
    tools' input schemas."""
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    node = build_node(settings, embedder=real_embedder)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(node.running()),
        portal.wrap_async_context_manager(Client(build_server(settings, node=node))) as client,
    ):
        service = node.service
        assert service is not None

        def call_tool(name: str, args: dict[str, Any]) -> CallToolResult:
            return portal.call(client.call_tool, name, args)

        listed = portal.call(client.list_tools)
        yield call_tool, service, {tool.name: tool.input_schema for tool in listed.tools}


def snapshot(service: MemoryService, path: Path) -> bytes:
    service.export(path)
    return path.read_bytes().split(b"\n", 1)[1]  # without the header and its time


def test_every_tool_survives_hostile_arguments(
    live: tuple[Callable[..., CallToolResult], MemoryService, dict[str, dict[str, Any]]],
    tmp_path: Path,
    record_count: Callable[[str, int], None],
) -> None:
    call_tool, service, _ = live
    known = [call_tool("remember", {"content": text}).structured_content["id"] for text in SEEDS]  # pyright: ignore[reportOptionalSubscript]
    counts = {"fuzz cases": 0, "fuzz cases rejected": 0, "rejections checked unchanged": 0}

    @hypothesis_settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(case=calls(known))
    def one(case: tuple[str, dict[str, Any]]) -> None:
        name, args = case
        if service.stats().memories < 3:  # a fuzzed forget may empty the store: refill it
            for text in SEEDS:
                service.remember(text)
        before = snapshot(service, tmp_path / "before.jsonl")
        result = call_tool(name, args)
        counts["fuzz cases"] += 1
        if result.is_error:
            counts["fuzz cases rejected"] += 1
            message = error_text(result)
            assert len(message) > 10, f"{name}({args!r}) gave an empty error"
            assert "Traceback" not in message, message
            assert "Internal" not in message, message
            assert snapshot(service, tmp_path / "after.jsonl") == before, f"rejected {name}({args!r}) changed data"
            counts["rejections checked unchanged"] += 1
        else:
            assert result.structured_content is not None
            parsed = OUTPUTS[name].model_validate(result.structured_content)
            if isinstance(parsed, RecallResult):
                assert all(math.isfinite(h.score) for h in parsed.hits)

    one()
    alive = call_tool("remember", {"content": "Still answering after the fuzzing."})
    assert not alive.is_error
    hits = call_tool("recall", {"query": "still answering after fuzzing", "k": 1}).structured_content
    assert hits is not None
    assert hits["hits"][0]["id"] == alive.structured_content["id"]  # pyright: ignore[reportOptionalSubscript]
    assert counts["fuzz cases"] == CASES
    assert counts["fuzz cases rejected"] > CASES // 4, "the strategies must mostly probe bad input"
    for name, n in counts.items():
        record_count(name, n)


# Values of the wrong JSON type for each schema type; lax parsing would turn most of them into valid ones
# (true into the id 1, "2" into 2, "yes" into true).
WRONG: dict[str, list[Any]] = {
    "integer": [True, "2", 1.5],
    "number": ["0.5", True],
    "boolean": ["yes", "true", 1],
    "string": [5, True],
    "object": ["x", [1]],
    "array:integer": [[True], ["2"], "3"],
    "array:string": ["family", [1], [True]],
    "array:object": [[{"content": 5}], [{"content": "ok", "importance": "0.9"}], [{"content": "ok", "tags": "x"}]],
}


def json_type(field: dict[str, Any], schema: dict[str, Any]) -> str:
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    (field,) = options
    if field.get("type") == "array":
        items = field["items"]
        if "$ref" in items:
            items = schema["$defs"][items["$ref"].rsplit("/", 1)[1]]
        return f"array:{items['type']}"
    return field["type"]


def test_every_argument_of_every_tool_refuses_a_wrong_json_type_and_changes_nothing(
    live: tuple[Callable[..., CallToolResult], MemoryService, dict[str, dict[str, Any]]],
    tmp_path: Path,
    record_count: Callable[[str, int], None],
) -> None:
    call_tool, service, tools = live
    known = [call_tool("remember", {"content": text}).structured_content["id"] for text in SEEDS]  # pyright: ignore[reportOptionalSubscript]
    valid: dict[str, dict[str, Any]] = {
        "remember": {"content": "A strictly typed memory."},
        "remember_many": {"memories": [{"content": "A strictly typed batch."}]},
        "recall": {"query": "tea"},
        "associate": {"source_id": known[0], "target_ids": [known[1]]},
        "forget": {"ids": [known[2]]},
        "stats": {},
    }
    checked = 0
    for name, base in valid.items():
        schema = tools[name]
        for argument, field in schema["properties"].items():
            for wrong in WRONG[json_type(field, schema)]:
                before = snapshot(service, tmp_path / "before.jsonl")
                result = call_tool(name, {**base, argument: wrong})
                assert result.is_error, f"{name}({argument}={wrong!r}) was accepted: {result.structured_content}"
                assert argument in error_text(result), error_text(result)
                assert "Nothing was done" in error_text(result)
                assert snapshot(service, tmp_path / "after.jsonl") == before, f"{name}({argument}={wrong!r})"
                checked += 1
    assert known[0] in {m.id for m in service.get(known)}, "forget(ids=[true]) must not have deleted memory 1"
    record_count("strict-type cases", checked)
