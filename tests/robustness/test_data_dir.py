"""The data dir is its user's alone: one others may enter is tightened at start (or refused when it is not ours),
and every file a server makes in it is owner-only."""

import logging
import os
import stat
from pathlib import Path

import pytest

from hebbian_memory.errors import StorageError
from hebbian_memory.files import private_dir
from tests.helpers import call, stdio_client

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in folder.iterdir() if not p.is_symlink()}


@pytest.mark.anyio
async def test_a_data_dir_made_with_mkdir_is_made_private_and_so_is_every_file_in_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)  # what `mkdir` gives under the usual umask
    earlier = data_dir / "memory.duckdb.wal.old"  # a file an earlier version left readable by everyone
    earlier.write_text("x")
    earlier.chmod(0o644)
    async with stdio_client(data_dir) as client:
        await call(client, "remember", content="the deploy key lives in the vault")
        while_running = _modes(data_dir)  # the database, its WAL, owner.lock, owner.json and owner.sock
    after_exit = _modes(data_dir)  # and the vector index with its sidecar
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {"memory.duckdb", "owner.lock", "owner.json"} <= set(while_running)
    assert {"memory.duckdb", "vectors.usearch", "vectors.usearch.json"} <= set(after_exit)
    opened = {name: f"{mode:o}" for name, mode in {**while_running, **after_exit}.items() if mode & 0o077}
    assert opened == {}


def test_tightening_a_data_dir_is_logged_and_leaves_symbolic_links_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o777)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    outside.chmod(0o644)
    (data_dir / "link").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="hebbian_memory.files"):
        private_dir(data_dir)
        private_dir(data_dir)  # already private: nothing more to say
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert [r.getMessage() for r in caplog.records] == [
        f"the data dir {data_dir} let other users in (mode 777): changed it to 0700"
    ]


def test_a_data_dir_of_another_user_that_others_may_enter_is_refused_unchanged(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        theirs.chmod(0o755)
        os.chown(theirs, 65534, 65534)  # nobody's
    else:
        theirs = Path("/")  # root's and 0755; a normal user can change nothing there anyway
    before = theirs.stat()
    with pytest.raises(StorageError, match="belongs to another user") as refused:
        private_dir(theirs)
    assert "--data-dir" in str(refused.value)
    assert theirs.stat().st_mode == before.st_mode
