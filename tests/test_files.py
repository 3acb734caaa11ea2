"""Owner-only files (exports, the map page): private from their creation, written whole or not at all."""

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hebbian_memory import files, portability
from hebbian_memory.storage import Store


def test_the_partial_file_is_owner_only_before_anything_is_written_to_it(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with files.private_file(target) as out:
        partial = tmp_path / "out.txt.partial"
        assert stat.S_IMODE(partial.stat().st_mode) == 0o600
        out.write("secret")
        assert not target.exists(), "renamed into place only when complete"
    assert target.read_text(encoding="utf-8") == "secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not partial.exists()


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("the old one", encoding="utf-8")

    def half_then_fail() -> None:
        with files.private_file(target) as out:
            out.write("half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        half_then_fail()
    assert target.read_text(encoding="utf-8") == "the old one"
    assert list(tmp_path.iterdir()) == [target]


def test_an_export_over_a_crashed_exports_world_readable_leftover_is_owner_only(tmp_path: Path) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    leftover = tmp_path / "backup.jsonl.partial"
    leftover.write_text("half an export")
    leftover.chmod(0o644)
    store = Store.open(tmp_path / "memory.duckdb", now)
    try:
        portability.export(store, tmp_path / "backup.jsonl", now, model=None)
    finally:
        store.close()
    assert stat.S_IMODE((tmp_path / "backup.jsonl").stat().st_mode) == 0o600
    assert not leftover.exists()
