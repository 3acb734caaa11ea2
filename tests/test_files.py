"""Owner-only files (exports, the map page): private from their creation, written whole or not at all."""

import stat
from pathlib import Path

import pytest

from hebbian_memory import files


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
