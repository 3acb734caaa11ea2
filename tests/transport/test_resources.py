"""MCP beyond tools, through the real client and server in memory with the real model: resources, the prompt,
progress notifications, and the server's instructions."""

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.transport.app import build_server
from hebbian_memory.transport.tools import PROGRESS_STEP
from tests.helpers import call, error_text, shared_model_cache

pytestmark = pytest.mark.anyio


def text_of(contents: object) -> str:
    assert isinstance(contents, TextResourceContents)
    return contents.text


async def test_resources_show_stats_a_memory_and_the_recent_ones(data_dir: Path, real_embedder: OnnxEmbedder) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    async with Client(build_server(settings, embedder=real_embedder)) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert listed == {"memory://stats", "memory://recent"}
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert templates == ["memory://memories/{memory_id}"]

        ids = [
            (await call(client, "remember", content=f"Fact number {n} about otters.", tags=["otters"]))["id"]
            for n in range(3)
        ]
        one = json.loads(text_of((await client.read_resource(f"memory://memories/{ids[1]}")).contents[0]))
        assert one["content"] == "Fact number 1 about otters."
        assert one["tags"] == ["otters"]
        recent = json.loads(text_of((await client.read_resource("memory://recent", cache_mode="bypass")).contents[0]))
        assert [m["id"] for m in recent] == ids[::-1]
        stats = json.loads(text_of((await client.read_resource("memory://stats", cache_mode="bypass")).contents[0]))
        assert stats["memories"] == 3
        assert stats["links_by_kind"] == {"temporal": 2}

        with pytest.raises(MCPError, match="No memory with id 999"):
            await client.read_resource("memory://memories/999")
        with pytest.raises(MCPError, match="not a memory id"):
            await client.read_resource("memory://memories/abc")


async def test_the_prompt_and_the_instructions_tell_the_model_when_to_use_memory(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    async with Client(build_server(settings, embedder=real_embedder)) as client:
        instructions = client.instructions or ""
        assert "`recall` at the start of a task" in instructions
        assert "`used`" in instructions
        assert "`misled`" in instructions
        assert "use_memory" in [p.name for p in (await client.list_prompts()).prompts]
        prompt = await client.get_prompt("use_memory", {"topic": "the garden project"})
        text = prompt.messages[0].content
        assert "(here: the garden project)" in getattr(text, "text", "")
        assert "`remember`" in getattr(text, "text", "")
        assert "`used`" in getattr(text, "text", "")


async def test_a_large_remember_many_reports_progress_and_stays_all_or_nothing(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    total = 2 * PROGRESS_STEP + 30
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(build_server(settings, embedder=real_embedder)) as client:
        bad = [{"content": f"note {n}"} for n in range(total)] + [{"content": "  "}]
        refused = await client.call_tool("remember_many", {"memories": bad}, progress_callback=on_progress)
        assert refused.is_error
        assert f"memory {total + 1}" in error_text(refused)
        assert (await call(client, "stats"))["memories"] == 0, "one bad item stores none, even in parts"

        memories = [{"content": f"Bulk note {n} about kayaks."} for n in range(total)]
        result = await client.call_tool("remember_many", {"memories": memories}, progress_callback=on_progress)
        assert not result.is_error
        assert result.structured_content is not None
        assert len(result.structured_content["results"]) == total
    assert seen == [(PROGRESS_STEP, total), (2 * PROGRESS_STEP, total), (total, total)]
