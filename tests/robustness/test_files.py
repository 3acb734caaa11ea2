"""Files the server writes (exports, the map page, the owner's address, the vector index): private from their
creation, written whole or not at all, and never through a symlink someone planted beside them."""

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hebbian_memory import faults, files
from hebbian_memory.errors import StorageError
from hebbian_memory.service import portability
from hebbian_memory.sharing.election import LOCK_FILE, OwnerLock
from hebbian_memory.storage.duckdb import Store
from tests.planted import assert_private_regular_file, assert_untouched, plant_links


def partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_the_partial_file_is_owner_only_before_anything_is_written_to_it(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with files.private_file(target) as out:
        [partial] = partial_files(tmp_path)
        assert_private_regular_file(partial)
        out.write("secret")
        assert not target.exists(), "renamed into place only when complete"
    assert target.read_text(encoding="utf-8") == "secret"
    assert_private_regular_file(target)
    assert partial_files(tmp_path) == []


def test_the_partial_file_has_a_name_nobody_can_plant_in_advance(tmp_path: Path) -> None:
    """Two writers of one target at once each get their own partial file (a fixed name would be shared, and
    could be planted as a link before either writer came)."""
    target = tmp_path / "out.txt"
    with files.private_file(target) as first, files.private_file(target) as second:
        names = {p.name for p in partial_files(tmp_path)}
        assert len(names) == 2
        assert "out.txt.partial" not in names
        first.write("first")
        second.write("second")
    assert target.read_text(encoding="utf-8") == "first", "the last to finish wins, whole"
    assert partial_files(tmp_path) == []


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


def test_links_planted_at_the_target_and_its_old_partial_name_are_replaced_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    victim = plant_links(target, "out.txt.partial")
    files.write_private(target, "ours")
    assert_untouched(victim)
    assert_private_regular_file(target)
    assert target.read_text(encoding="utf-8") == "ours"


def test_a_private_folder_moves_a_file_written_by_name_into_place_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "index.bin"
    victim = plant_links(target)
    with files.private_folder(target) as folder:
        assert stat.S_IMODE(folder.lstat().st_mode) & 0o077 == 0
        written = folder / target.name
        written.write_bytes(b"by name")
        written.chmod(0o644)  # as a library creating it with the default umask leaves it
        files.move_into_place(written, target)
    assert_untouched(victim)
    assert_private_regular_file(target)
    assert target.read_bytes() == b"by name"
    assert sorted(tmp_path.iterdir()) == [target, victim], "the folder went with the block"


def test_leftovers_of_a_crashed_writer_are_removed_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "index.bin"
    (tmp_path / "index.bin.0123456789abcdef.partial").write_text("a crashed write")
    (tmp_path / "index.bin.fedcba9876543210.partial").mkdir()
    (tmp_path / "index.bin.fedcba9876543210.partial" / "index.bin").write_text("a crashed write by name")
    victim = plant_links(tmp_path / "index.bin.00000000000000aa.partial")
    kept = [tmp_path / "index.bin.partial", tmp_path / "other.bin.0123456789abcdef.partial", victim]
    for path in kept[:2]:
        path.write_text("not a leftover of this target's writer")
    files.remove_leftovers(target)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert_untouched(victim)


def test_an_export_over_planted_links_writes_neither_through_them(tmp_path: Path) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    target = tmp_path / "backup.jsonl"
    victim = plant_links(target, "backup.jsonl.partial")
    store = Store.open(tmp_path / "memory.duckdb", now)
    try:
        portability.export(store, target, now, model=None)
    finally:
        store.close()
    assert_untouched(victim)
    assert_private_regular_file(target)
    assert '"type":"header"' in target.read_text(encoding="utf-8")


def test_the_write_probe_never_writes_through_a_link_planted_at_its_old_name(tmp_path: Path) -> None:
    """A database error carries no errno, so the folder is probed with a small write; it is a new file, not the
    fixed name a neighbour could plant."""
    victim = plant_links(tmp_path / ".hebbian-write-probe")
    assert faults.classify(tmp_path, RuntimeError("IO Error: could not write")) == "io", "the probe write worked"
    assert_untouched(victim)
    assert sorted(tmp_path.iterdir()) == sorted([victim, tmp_path / ".hebbian-write-probe"]), "the probe is gone"


def test_a_link_planted_as_the_owner_lock_is_refused_by_name_and_its_target_is_not_locked(tmp_path: Path) -> None:
    victim = plant_links(tmp_path / LOCK_FILE)
    lock = OwnerLock(tmp_path)
    with pytest.raises(StorageError, match="symbolic link") as refused:
        lock.try_acquire()
    assert str(tmp_path / LOCK_FILE) in str(refused.value)
    assert not lock.held
    fd = os.open(victim, os.O_RDONLY)
    try:
        assert files.try_lock(fd), "the victim's file is not held locked"
    finally:
        os.close(fd)
    assert_untouched(victim)
