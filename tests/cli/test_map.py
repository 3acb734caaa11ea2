"""`hebbian-memory map`: the page is written from a real store, and headless Chromium loads it offline, draws
every node and link, searches, and takes a screenshot; the layout of big, mostly unlinked stores, from export
files written here; the page file is owner-only; counts in its text agree with their numbers."""

import itertools
import json
import os
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hebbian_memory.cli import graphmap, main
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.models import MemoryInput
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from tests.planted import assert_private_regular_file, assert_untouched, plant_links

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
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("HEBBIAN_BROWSER_TEST") != "required",
    reason="headless Chromium is not installed (.ci/run installs it and makes this test required)",
)
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TRIP = ["We fly to Lisbon on 12 May.", "The hotel is in Alfama, near the castle.", "Ana wants to see the tiles museum."]
WORK = ["The release is planned for June.", "Bob owns the database migration.", "Staging runs on mercury."]


def headless(browser: str, tmp_path: Path, *args: str, out: str = "stdout") -> str:
    """What headless Chromium printed (the DOM for --dump-dom) on ``out``."""
    done = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout if out == "stdout" else done.stderr


def page_data(text: str) -> dict[str, Any]:
    return json.loads(re.search(r"const DATA = (.*);\n", text).group(1))  # pyright: ignore[reportOptionalMemberAccess]


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
    assert page.stat().st_mode & 0o777 == 0o600, "the page holds every memory's text: owner only"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), "nothing to fetch: works offline"
    assert "https://" not in text
    data = page_data(text)
    assert {n["label"] for n in data["nodes"]} == {*TRIP, *WORK, "Unlinked note: buy stamps."}
    assert [n["label"] for n in data["nodes"] if n["cluster"] is None] == ["Unlinked note: buy stamps."], "on the strip"
    assert data["links_by_kind"].keys() >= {"temporal", "explicit"}
    assert data["decay"]["1"][0] == 1.0 > data["decay"]["1"][30] > 0
    assert data["decay"]["1"][30] < data["decay"]["2"][30] < data["decay"]["3"][30], "deeper tiers fade slower"


@NEEDS_CHROMIUM
def test_the_map_renders_in_headless_chromium_and_searches(
    settings: Settings, real_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    browser = CHROMIUM
    assert browser is not None, "HEBBIAN_BROWSER_TEST=required but no chromium on PATH"
    fill(settings, real_embedder)
    page = tmp_path / "map.html"
    CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "map", "-o", str(page)], catch_exceptions=False)
    dom = headless(browser, tmp_path, "--dump-dom", f"{page.as_uri()}?q=lisbon")
    assert 'data-ready="1"' in dom, "the script ran to the end"
    assert len(re.findall(r'<circle class="node', dom)) == 7
    assert len(re.findall(r'<line class="link"', dom)) >= 5
    assert "1 matching" in dom, "the search box finds the Lisbon memory"
    assert "7 of 7 memories shown" in dom
    assert "Without a link: 1 memory, on the strip below" in dom

    shot = tmp_path / "map.png"
    errors = headless(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,800", page.as_uri(), out="stderr")
    assert shot.exists(), errors
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, "a drawn page, not a blank one"


# --- from export files written here: no model, no store -----------------------------------------------------

RULES = load_settings(env={}).plasticity
NOW = START + timedelta(days=90)


def export_file(path: Path, made: list[datetime], links: list[tuple[int, int]], tiers: list[int] | None = None) -> Path:
    """An export file of memories 1..len(made) (made at those times) and links between them."""
    at = (NOW - timedelta(days=1)).isoformat()
    link = {"type": "link", "weight": 0.6, "created_at": at, "updated_at": at, "last_strengthened_at": at}
    lines = [
        {"type": "memory", "id": i, "content": f"memory {i}", "created_at": t.isoformat(), "tier": tier}
        for i, (t, tier) in enumerate(zip(made, tiers or [1] * len(made), strict=True), start=1)
    ]
    lines += [{**link, "source_id": a, "target_id": b} for a, b in links]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def cluster(first: int, size: int) -> list[tuple[int, int]]:
    """A chain through memories first..first+size-1, and a link from the first to every third."""
    members = list(range(first, first + size))
    return list(itertools.pairwise(members)) + [(first, m) for m in members[3::3]]


def test_linked_memories_are_packed_as_separate_clusters_above_a_time_strip_of_the_rest(tmp_path: Path) -> None:
    made = [START + timedelta(hours=7 * i) for i in range(300)]  # 300 memories over 87 days
    links = cluster(1, 20) + cluster(21, 8) + cluster(29, 3) + cluster(32, 2)
    data = graphmap.graph_data(export_file(tmp_path / "export.jsonl", made, links), RULES, NOW)

    nodes, strip = data["nodes"], data["strip"]
    assert len(nodes) == 300
    assert len(data["links"]) == len(links)
    assert [c["memories"] for c in data["clusters"]] == [20, 8, 3, 2], "one per component, biggest first"
    assert data["linked_memories"] == 33
    assert strip["memories"] == strip["shown"] == 267
    linked = [n for n in nodes if n["links"]]
    assert {n["id"] for n in linked} == set(range(1, 34))
    biggest = 16  # a node's largest radius on the page
    assert max(n["y"] for n in linked) + biggest < strip["y"] - 50, "the clusters above the strip and its title"
    assert all(n["cluster"] is None and n["y"] >= strip["y"] for n in nodes if not n["links"])
    for i, box in enumerate(data["clusters"]):
        inside = [n for n in linked if n["cluster"] == i]
        assert len(inside) == box["memories"]
        assert all(box["x"] - 0.01 <= n["x"] <= box["x"] + box["side"] + 0.01 for n in inside), "rounded to 0.01"
        assert all(box["y"] - 0.01 <= n["y"] <= box["y"] + box["side"] + 0.01 for n in inside)
    for one, other in itertools.combinations(data["clusters"], 2):
        apart = max(other["x"] - one["x"] - one["side"], one["x"] - other["x"] - other["side"])
        apart = max(apart, other["y"] - one["y"] - one["side"], one["y"] - other["y"] - other["side"])
        assert apart > 2 * biggest, "no two clusters' nodes overlap"
    on_strip = sorted((n for n in nodes if n["cluster"] is None), key=lambda n: n["id"])  # ids in time order here
    xs = [n["x"] for n in on_strip]
    assert xs == sorted(xs), "x is the time each was made"
    assert xs[-1] - xs[0] >= 0.9 * data["width"], "from edge to edge"
    assert [t["date"] for t in strip["ticks"]][::5] == ["2026-03-11", "2026-05-27"], "first to last unlinked"
    assert all(0 <= n["x"] <= data["width"] and 0 <= n["y"] <= data["height"] for n in nodes)


def test_a_strip_column_stacks_its_memories_by_tier(tmp_path: Path) -> None:
    made = [START] * 6 + [START + timedelta(days=30)]  # six in the first column
    tiers = [3, 1, 2, 1, 3, 2, 1]
    data = graphmap.graph_data(export_file(tmp_path / "export.jsonl", made, [], tiers), RULES, NOW)
    first = sorted((n for n in data["nodes"] if n["x"] == data["nodes"][0]["x"]), key=lambda n: n["y"])
    assert [n["tier"] for n in first] == [1, 1, 2, 2, 3, 3]
    assert data["clusters"] == []
    assert data["strip"]["y"] == 0, "no linked memory: the strip alone, at the top"


def test_big_stores_draw_whole_clusters_first_and_an_even_sample_of_the_rest(tmp_path: Path) -> None:
    made = [START + timedelta(hours=i) for i in range(400)]
    links = cluster(1, 6) + cluster(7, 4) + cluster(11, 4) + cluster(15, 2)
    export = export_file(tmp_path / "export.jsonl", made, links)
    data = graphmap.graph_data(export, RULES, NOW, max_linked=11, max_unlinked=40)
    assert [c["memories"] for c in data["clusters"]] == [6, 4], "whole clusters while they fit, then smaller ones"
    drawn = sorted(n["id"] for n in data["nodes"] if n["cluster"] is None)
    assert len(drawn) == data["strip"]["shown"] == 40
    assert data["strip"]["memories"] == 384
    assert (drawn[0], drawn[-1]) == (17, 400), "the sample spans the whole time"
    gaps = [b - a for a, b in itertools.pairwise(drawn)]
    assert max(gaps) - min(gaps) <= 1, "evenly spread"

    giant = graphmap.graph_data(export, RULES, NOW, max_linked=3, max_unlinked=40)
    assert sorted(n["id"] for n in giant["nodes"] if n["cluster"] is not None) == [1, 2, 4], "its most linked part"


def test_the_page_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    page = tmp_path / "map.html"
    page.write_text("an older map")
    page.chmod(0o644)
    data = graphmap.graph_data(export_file(tmp_path / "export.jsonl", [START], []), RULES, NOW)
    graphmap.write(page, data)
    assert stat.S_IMODE(page.stat().st_mode) == 0o600, "it holds the text of every memory, like an export"
    assert page_data(page.read_text(encoding="utf-8"))["nodes"][0]["label"] == "memory 1"


def test_map_o_replaces_links_planted_at_the_page_and_its_old_partial_name(settings: Settings, tmp_path: Path) -> None:
    """Someone who can write into the page's folder plants links to a file of theirs (to read every memory) or of
    the user's (to have it overwritten): the page replaces them, and what they point to is left alone."""
    page = tmp_path / "shared" / "map.html"
    page.parent.mkdir()
    victim = plant_links(page, "map.html.partial")
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "map", "-o", str(page)])
    assert result.exit_code == 0, result.output
    assert_untouched(victim)
    assert_private_regular_file(page)
    assert page_data(page.read_text(encoding="utf-8"))["total_memories"] == 0


def test_no_count_in_the_page_text_is_written_without_choosing_singular_or_plural() -> None:
    script = graphmap.PAGE.read_text(encoding="utf-8")
    bare = re.findall(r"\$\{[^}]*\}\s*(?:memor|link|cluster)\w*", script)
    assert bare == [], "a number before a fixed noun reads '1 links'; use count(n, one, many)"


@NEEDS_CHROMIUM
def test_the_page_says_one_link_and_one_memory(tmp_path: Path) -> None:
    browser = CHROMIUM
    assert browser is not None, "HEBBIAN_BROWSER_TEST=required but no chromium on PATH"
    export = export_file(tmp_path / "export.jsonl", [START, START, START], [(1, 2)], tiers=[1, 1, 2])
    page = tmp_path / "map.html"
    graphmap.write(page, graphmap.graph_data(export, RULES, NOW))
    dom = headless(browser, tmp_path, "--dump-dom", page.as_uri())
    assert 'data-ready="1"' in dom
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)>.*?</\1>", "", dom, flags=re.DOTALL))  # what is shown
    assert "3 of 3 memories shown, 1 link." in text
    assert "Linked: 2 memories in 1 cluster, biggest first." in text
    assert "Without a link: 1 memory, on the strip below" in text
    assert "2 memories, 1 link" in text, "tier 1's row"
    assert "1 memory, 0 links" in text, "tier 2's row"
    assert not re.search(r"\b1 (memories|links|clusters)\b", text)


def test_the_map_command_says_one_memory_and_one_link_in_the_singular(
    settings: Settings, real_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    service = MemoryService(
        settings, Store.open(settings.data_dir / "memory.duckdb", START), real_embedder, ManualClock(START)
    )
    service.warm_up()
    try:
        session = service.start_session("stdio")
        service.remember_many(
            [MemoryInput(content="The boat leaves at nine."), MemoryInput(content="Bring a coat.")], session
        )
        service.end_session(session)
    finally:
        service.close()
    page = tmp_path / "map.html"
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "map", "-o", str(page)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Wrote {page}: 2 of 2 memories, 1 link."
