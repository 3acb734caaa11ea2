"""Export, import and schema migration with the real model, a real DuckDB file and the real CLI."""

import base64
import gzip
import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from hebbian_memory.cli import main
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.errors import HebbianMemoryError, InvalidInputError
from hebbian_memory.models import ImportResult, MemoryInput
from hebbian_memory.service import portability
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.sharing.ops import IMPORT, ImportArgs
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.schema import SCHEMA_VERSION
from tests.backends import OpenStore, open_duckdb, opener
from tests.helpers import shared_model_cache

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parents[1] / "fixtures"


def open_service(
    data_dir: Path, embedder: OnnxEmbedder, clock: ManualClock | None = None, open_store: OpenStore = open_duckdb
) -> MemoryService:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    clock = clock or ManualClock(START)
    service = MemoryService(settings, open_store(data_dir / "memory.duckdb", clock.now()), embedder, clock)
    service.warm_up()
    return service


@pytest.fixture
def filled(settings: Settings, real_embedder: OnnxEmbedder) -> Path:
    """A data dir with two projects, two sessions, every link kind, tiers moved by a pass, unicode metadata."""
    clock = ManualClock(START)
    service = open_service(settings.data_dir, real_embedder, clock)
    fill(service, clock)
    service.close()
    return settings.data_dir


def fill(service: MemoryService, clock: ManualClock) -> None:
    """Two projects, two sessions, every link kind, tiers moved by a pass, unicode metadata, a use report."""
    first = service.start_session("stdio", "Claude Desktop", "1.2", "shop")
    a = service.remember(
        "The shop's staging server is mercury.", ["ops"], {"by": "Zoë ✓"}, 0.9, "2025-05-30", first, "shop"
    )
    b = service.remember("Deploys happen on Tuesdays.", ["ops", "deploy"], None, 0.5, None, first, "shop")
    branch = service.remember("The staging server deploys from the main branch.", None, None, 0.5, None, first, "shop")
    clock.advance(timedelta(hours=3))
    second = service.start_session("stdio", None, None, "blog")
    c = service.remember("The blog is built with Hugo.", None, {"speaker": "Ana"}, 0.4, None, second, "blog")
    service.remember_many([MemoryInput(content=f"Blog post {n} is about tea.") for n in range(5)], second, "blog")
    service.associate(a.id, [c.id], 0.7, second)
    service.recall("staging server deploys", session_id=first, project="shop")
    service.recall("staging server deploys", session_id=first, project="shop")
    # A use report: the staging note helped (its record gets a cue, the query's context), the branch note misled.
    service.recall("where do deploys go?", session_id=first, project="shop", used=[a.id], misled=[branch.id])
    service.forget(ids=[b.id])  # a gap in the ids, which an import must keep
    service.end_session(first)
    clock.advance(timedelta(days=2))
    service.consolidate()


def cli(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def records(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "header"
    return lines[1:]


def test_export_then_import_into_an_empty_store_round_trips_exactly(filled: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    cli(filled, "export", str(first))
    exported = records(first)
    kinds = [r["type"] for r in exported]
    assert kinds.count("memory") == 8
    assert kinds.count("session") == 2
    assert {r["kind"] for r in exported if r["type"] == "link"} == {"temporal", "explicit", "coaccess"}
    reported = {r["content"][:11]: r for r in exported if r["type"] == "memory" and "used_at" in r}
    assert reported.keys() == {"The shop's ", "The staging"}, "the memories the report named carry their record"
    assert reported["The shop's "]["uses"] > 0
    assert reported["The shop's "]["cue"], "and the context it was used in"
    assert reported["The staging"]["misleads"] == 1.0
    assert (first.stat().st_mode & 0o777) == 0o600, "an export holds memories: owner only"

    restored = tmp_path / "restored"
    summary = json.loads(cli(restored, "import", "--json", str(first)))
    assert summary["created"] == {"session": 2, "memory": 8, "link": kinds.count("link")}
    cli(restored, "export", str(second))
    assert records(second) == exported, "ids, times, weights, tiers, embeddings: all as they were"

    again = json.loads(cli(restored, "import", "--json", str(first)))
    assert again["created"] == {"session": 0, "memory": 0, "link": 0}
    assert again["duplicates"] == summary["created"]


@pytest.mark.parametrize(("source", "target"), [("duckdb", "memory"), ("memory", "duckdb"), ("memory", "memory")])
def test_an_export_imports_into_either_backend_and_exports_the_same_records(
    source: str, target: str, tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    """The backends hold the same rows: ids, times, weights, tiers, embeddings and use records survive a trip
    from one to the other (DuckDB to DuckDB is the CLI round trip above)."""
    clock = ManualClock(START)
    service = open_service(tmp_path / "a", real_embedder, clock, opener(source))
    try:
        fill(service, clock)
        service.export(tmp_path / "a.jsonl")
    finally:
        service.close()
    service = open_service(tmp_path / "b", real_embedder, clock, opener(target))

    async def send(kind: str, batch: list[dict[str, Any]]) -> ImportResult:
        return IMPORT.run(service, ImportArgs(kind=kind, records=batch))  # pyright: ignore[reportArgumentType] -- the reader gives only the three kinds

    try:
        summary = anyio.run(portability.import_file, tmp_path / "a.jsonl", send)
        service.export(tmp_path / "b.jsonl")
        again = anyio.run(portability.import_file, tmp_path / "a.jsonl", send)
    finally:
        service.close()
    exported = records(tmp_path / "a.jsonl")
    assert summary.created == {kind: sum(r["type"] == kind for r in exported) for kind in ("session", "memory", "link")}
    assert records(tmp_path / "b.jsonl") == exported
    assert again.created == {"session": 0, "memory": 0, "link": 0}
    assert again.duplicates == summary.created


def test_import_into_a_used_store_gives_new_ids_and_links_follow_them(
    filled: Path, tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    export = tmp_path / "export.jsonl"
    cli(filled, "export", str(export))
    other = tmp_path / "other"
    service = open_service(other, real_embedder)
    taken = [service.remember(f"Unrelated note number {n}.").id for n in range(12)]
    service.close()

    cli(other, "import", str(export))
    service = open_service(other, real_embedder)
    try:
        hits = service.recall("mercury", k=1, project="shop").hits
        assert hits[0].content == "The shop's staging server is mercury."
        assert hits[0].id not in taken
        linked = dict(service.links(hits[0].id))
        hugo = service.recall("Hugo", k=1, project="blog").hits[0]
        assert hugo.id not in taken
        assert linked[hugo.id] > 0.5, "the explicit link joins the new ids"
        assert service.stats().memories == 12 + 8
    finally:
        service.close()


def test_a_hand_written_file_imports_and_a_bad_line_is_named(tmp_path: Path, real_embedder: OnnxEmbedder) -> None:
    good = tmp_path / "notes.jsonl"
    good.write_text(
        '{"type": "memory", "content": "The VPN password=Tr0ub4dor&3 for the office."}\n\n'
        '{"type": "memory", "content": "Lunch is at noon on Fridays.", "tags": ["Food"], "project": "home"}\n'
        '{"type": "memory", "content": "The gate code changes monthly.", "embedding": "%%% not base64",'
        ' "embedding_model": "hebbian-memory/all-MiniLM-L6-v2-int8"}\n',
        encoding="utf-8",
    )
    summary = json.loads(cli(tmp_path / "data", "import", "--json", str(good)))
    assert summary["created"]["memory"] == 3
    assert summary["redacted"] == 1

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "memory", "content": "fine"}\n{"type": "memory", "content": "x", "importance": 7}\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "import", str(bad)])
    assert result.exit_code == 1
    assert "line 2" in result.output
    assert "importance" in result.output

    service = open_service(tmp_path / "data", real_embedder)
    try:
        assert service.stats().projects == {"default": 2, "home": 1}, "the batch holding the bad line stored nothing"
        assert service.recall("gate code", k=1).hits[0].content == "The gate code changes monthly.", "re-embedded"
        lunch = service.recall("when is lunch", project="home").hits[0]
        assert lunch.tags == ["food"]
        vpn = service.recall("office VPN", k=1).hits[0]
        assert "Tr0ub4dor" not in vpn.content
        assert "[REDACTED:password]" in vpn.content
    finally:
        service.close()


def bulk_file(path: Path, embedder: OnnxEmbedder, bad_line: int | None = None) -> None:
    """1,500 memory lines (line n holds note n) with stored embeddings, so importing them embeds nothing;
    ``bad_line``'s content is empty."""
    vectors = np.random.default_rng(7).normal(size=(1500, embedder.dim)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lines = [
        json.dumps(
            {
                "type": "memory",
                "content": "" if n == bad_line else f"Bulk note {n} about the harbour.",
                "embedding": base64.b64encode(vectors[n - 1].tobytes()).decode("ascii"),
                "embedding_model": embedder.model_id,
            }
        )
        for n in range(1, 1501)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


STOPPED_AT_1300 = (
    "line 1300: content is empty. Send the text itself, not blank space. None of this batch's 500 memories were "
    "stored. The import stopped after line 1000, having stored 1,000 memories, 0 links and 0 sessions; nothing "
    "after line 1000 was stored. Fix that line and import the file again:"
)


def test_a_bad_line_deep_in_a_file_is_named_with_what_was_stored_before_it(
    tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    path, data = tmp_path / "bulk.jsonl", tmp_path / "data"
    bulk_file(path, real_embedder, bad_line=1300)
    result = CliRunner().invoke(main, ["--data-dir", str(data), "import", str(path)])
    assert result.exit_code == 1
    assert STOPPED_AT_1300 in " ".join(result.output.split())
    service = open_service(data, real_embedder)
    try:
        assert service.stats().memories == 1000, "exactly what the message says"
        assert service.recall("Bulk note 1000 about the harbour.", k=1).hits[0].content.startswith("Bulk note 1000")
    finally:
        service.close()

    bulk_file(path, real_embedder)  # the line fixed
    summary = json.loads(cli(data, "import", "--json", str(path)))
    assert summary["created"]["memory"] == 500
    assert summary["duplicates"]["memory"] == 1000, "what the first run stored is skipped, not stored twice"
    service = open_service(data, real_embedder)
    try:
        assert service.stats().memories == 1500
    finally:
        service.close()


def test_the_service_refuses_a_bad_line_naming_it_and_keeps_what_came_before(
    tmp_path: Path, real_embedder: OnnxEmbedder, open_store: OpenStore
) -> None:
    path = tmp_path / "bulk.jsonl"
    bulk_file(path, real_embedder, bad_line=1300)
    service = open_service(tmp_path / "data", real_embedder, open_store=open_store)

    async def send(kind: str, batch: list[dict[str, Any]]) -> ImportResult:
        return IMPORT.run(service, ImportArgs(kind=kind, records=batch))  # pyright: ignore[reportArgumentType] -- the reader gives only the three kinds

    try:
        with pytest.raises(HebbianMemoryError) as stopped:
            anyio.run(portability.import_file, path, send)
        assert STOPPED_AT_1300 in str(stopped.value)
        assert service.stats().memories == 1000
        bulk_file(path, real_embedder)
        summary = anyio.run(portability.import_file, path, send)
        assert (summary.created["memory"], summary.duplicates["memory"]) == (500, 1000)
        assert service.stats().memories == 1500
    finally:
        service.close()


def test_a_line_that_is_not_json_stops_the_import_with_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(
        "".join(f'{{"type": "memory", "content": "note {n}"}}\n' for n in range(1, 601)) + "{nope\n",
        encoding="utf-8",
    )

    async def send(kind: str, batch: list[dict[str, Any]]) -> ImportResult:
        return ImportResult(ids=list(range(len(batch))), created=len(batch), duplicates=0)

    with pytest.raises(HebbianMemoryError, match="line 601: not JSON") as stopped:
        anyio.run(portability.import_file, path, send)
    assert "stopped after line 500, having stored 500 memories" in str(stopped.value)


def test_export_is_a_consistent_snapshot_while_writers_carry_on(
    settings: Settings, real_embedder: OnnxEmbedder, tmp_path: Path, open_store: OpenStore
) -> None:
    service = open_service(settings.data_dir, real_embedder, open_store=open_store)
    session = service.start_session("stdio")
    service.remember_many([MemoryInput(content=f"Seed fact {n} about rivers.") for n in range(300)], session)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            written.append(service.remember(f"Concurrent fact {n} about lakes.", session_id=session).id)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = service.export(tmp_path / "live.jsonl")
    finally:
        stop.set()
        thread.join()
    exported = records(tmp_path / "live.jsonl")
    memories = {r["id"] for r in exported if r["type"] == "memory"}
    links = [r for r in exported if r["type"] == "link"]
    try:
        assert written, "the writer ran during the export"
        assert result.memories == len(memories) >= 300
        assert result.links == len(links)
        assert all(r["source_id"] in memories and r["target_id"] in memories for r in links)
        # A snapshot: exactly the writes committed before it, a prefix of the writer's ids.
        concurrent = sorted(memories & set(written))
        assert concurrent == written[: len(concurrent)]
    finally:
        service.close()


def test_import_reports_progress_through_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text("".join(f'{{"type": "memory", "content": "note {n}"}}\n' for n in range(1200)), encoding="utf-8")
    seen: list[int] = []
    batches: list[int] = []

    async def send(kind: str, batch: list[dict[str, Any]]) -> ImportResult:
        batches.append(len(batch))
        return ImportResult(ids=list(range(len(batch))), created=len(batch), duplicates=0)

    summary = anyio.run(portability.import_file, path, send, seen.append)
    assert batches == [500, 500, 200]
    assert summary.created["memory"] == 1200
    assert seen == sorted(seen)
    assert seen[-1] == path.stat().st_size
    assert len(seen) == 3


def test_a_line_that_is_not_a_record_is_refused_with_its_number() -> None:
    with pytest.raises(InvalidInputError, match="line 3: not JSON"):
        portability.parse("{nope", 3)
    with pytest.raises(InvalidInputError, match="unknown record type 'note'"):
        portability.parse('{"type": "note"}', 1)


def test_a_first_schema_database_opens_and_migrates(tmp_path: Path, real_embedder: OnnxEmbedder) -> None:
    """The file was written by the first released code (tests/fixtures/README.md says how)."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    with gzip.open(FIXTURES / "schema-v1.duckdb.gz") as src, (data_dir / "memory.duckdb").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    service = open_service(data_dir, real_embedder)
    try:
        stats = service.stats()
        assert stats.memories == 4
        assert stats.projects == {"default": 4}
        assert stats.links_by_kind == {"explicit": 1, "temporal": 2}, "temporal links backfilled for session 1"
        hit = service.recall("what is Ana's cat called", k=1).hits[0]
        assert hit.content == "Ana's cat is called Miso and is afraid of thunder."
        assert hit.metadata == {"speaker": "Ana"}
        assert service.remember("Ana's cat is called Miso and is afraid of thunder.").created is False
        assert service.remember("A new memory after the migration.").id == 5
    finally:
        service.close()
    store = Store.open(data_dir / "memory.duckdb", START)
    try:
        assert store.get_meta("embedding_model") is not None
        assert len(store.all_ids()) == 5
    finally:
        store.close()
    assert SCHEMA_VERSION >= 3


def test_an_import_batch_crosses_the_wire_as_typed_records_keeping_their_lines() -> None:
    line = (
        '{"type": "link", "source_id": 1, "target_id": 2, "weight": 0.5, "created_at": "2025-06-01T12:00:00Z", '
        '"updated_at": "2025-06-01T12:00:00Z", "last_strengthened_at": "2025-06-01T12:00:00Z"}'
    )
    record = portability.parse(line, 7)
    assert isinstance(record, portability.LinkRecord)
    args = ImportArgs(kind="link", records=[record])
    sent = json.loads(json.dumps(args.model_dump()))  # what a forwarder's wire carries
    received = ImportArgs.model_validate(sent)
    assert received == args
    assert isinstance(received.records[0], portability.LinkRecord)
    assert received.records[0].line == 7
    with pytest.raises(ValidationError, match="a batch of session records holds memory records too"):
        ImportArgs(kind="session", records=[portability.MemoryRecord(content="a memory among sessions")])
