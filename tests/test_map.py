"""`hebbian-memory map`: the page is written from a real store, and headless Chromium loads it offline, draws
every node and link, searches, and takes a screenshot."""

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hebbian_memory.cli import main
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings
from hebbian_memory.embedding import OnnxEmbedder
from hebbian_memory.memory import MemoryService
from hebbian_memory.models import MemoryInput
from hebbian_memory.storage import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TRIP = ["We fly to Lisbon on 12 May.", "The hotel is in Alfama, near the castle.", "Ana wants to see the tiles museum."]
WORK = ["The release is planned for June.", "Bob owns the database migration.", "Staging runs on mercury."]


def fill(settings: Settings, embedder: OnnxEmbedder) -> None:
    clock = ManualClock(START)
    service = MemoryService(settings, Store.open(settings.data_dir / "memory.duckdb", START), embedder, clock)
    service.warm_up()
    try:
        for texts in (TRIP, WORK):
            session = service.start_session("stdio")
            service.remember_many([MemoryInput(content=t) for t in texts], session)
            service.end_session(session)
        session = service.start_session("stdio")
        for _ in range(2):
            service.recall("Lisbon trip hotel", k=3, session_id=session)
        service.remember("Unlinked note: buy stamps.")
        ids = [h.id for h in service.recall("release database", k=2, min_relevance=0).hits]
        service.associate(ids[0], [ids[1]], 0.9, session)
        service.end_session(session)
        clock.advance(timedelta(days=3))
        service.consolidate()
    finally:
        service.close()


def test_map_writes_a_self_contained_page_of_the_graph(
    settings: Settings, real_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    fill(settings, real_embedder)
    page = tmp_path / "map.html"
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "map", "-o", str(page), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"path": str(page), "memories": 7, "shown": 7, "links": summary["links"]}
    assert summary["links"] >= 5
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), "nothing to fetch: works offline"
    assert "https://" not in text
    data = json.loads(re.search(r"const DATA = (.*);\n", text).group(1))  # pyright: ignore[reportOptionalMemberAccess]
    assert {n["label"] for n in data["nodes"]} == {*TRIP, *WORK, "Unlinked note: buy stamps."}
    assert data["links_by_kind"].keys() >= {"temporal", "explicit"}
    assert data["decay"]["1"][0] == 1.0 > data["decay"]["1"][30] > 0
    assert data["decay"]["1"][30] < data["decay"]["2"][30] < data["decay"]["3"][30], "deeper tiers fade slower"


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("HEBBIAN_BROWSER_TEST") != "required",
    reason="headless Chromium is not installed (.ci/run installs it and makes this test required)",
)
def test_the_map_renders_in_headless_chromium_and_searches(
    settings: Settings, real_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    browser = CHROMIUM
    assert browser is not None, "HEBBIAN_BROWSER_TEST=required but no chromium on PATH"
    fill(settings, real_embedder)
    page = tmp_path / "map.html"
    CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "map", "-o", str(page)], catch_exceptions=False)
    profile = tmp_path / "profile"

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dom = chromium("--dump-dom", f"{page.as_uri()}?q=lisbon").stdout
    assert 'data-ready="1"' in dom, "the script ran to the end"
    assert len(re.findall(r'<circle class="node', dom)) == 7
    assert len(re.findall(r'<line class="link"', dom)) >= 5
    assert "1 matching" in dom, "the search box finds the Lisbon memory"
    assert "7 of 7 memories shown" in dom

    shot = tmp_path / "map.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,800", page.as_uri())
    assert shot.exists(), done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, "a drawn page, not a blank one"
