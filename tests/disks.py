"""Disks that refuse writes, for tests: a small tmpfs to fill up, and a folder made read-only even to root; and
a database file damaged in its middle, as a failing disk leaves one.

Mounting a tmpfs needs root (CI runs as root); elsewhere, or where mounting is not allowed, the test is skipped
with the reason. As root only the immutable flag (``chattr +i``) keeps a folder from being written, so a
read-only folder is that flag for root and a plain chmod for other users.
"""

import errno
import os
import shutil
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import anyio
import duckdb
import pytest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_CHUNK = 1 << 20
_DAMAGE = 8192
_DUCKDB_HEADERS = 3 * 4096  # DuckDB's file header and its two database headers come before block 0


@contextmanager
def small_tmpfs(mount_point: Path, megabytes: int) -> Generator[Path]:
    """A fresh tmpfs of ``megabytes`` at ``mount_point`` (made if missing, mode 0700), unmounted at the end."""
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs as root)")
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def _append_until_full(path: Path, chunk: int) -> bool:
    """Append one ``chunk`` of zeros (or as much as fits) to ``path``; False once the disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, b"\0" * chunk)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        return False
    finally:
        os.close(fd)
    return True


async def fill_gradually(filler: Path, pause_s: float = 0.01) -> None:
    """Grow ``filler`` a MiB at a time, pausing between, until its disk is full to the last block (so whatever
    writes beside it meanwhile meets a disk filling up, then a full one). Remove it to free the space."""
    while _append_until_full(filler, _CHUNK):
        await anyio.sleep(pause_s)
    while _append_until_full(filler, 512):  # the last partial MiB
        pass


@contextmanager
def read_only(folder: Path) -> Generator[None]:
    """``folder`` refuses new files, renames and removals while the block runs, even to root."""
    make_read_only(folder)
    try:
        yield
    finally:
        make_writable(folder)


def make_read_only(folder: Path) -> None:
    """The start of :func:`read_only`, for a test that turns it on mid-stream; undo with :func:`make_writable`."""
    if not IS_ROOT:
        folder.chmod(0o500)
        return
    if shutil.which("chattr") is None:
        pytest.skip("as root only the immutable flag makes a folder read-only, and chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag for root to obey: {done.stderr.strip()}")


def make_writable(folder: Path) -> None:
    if IS_ROOT:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=True)
    else:
        folder.chmod(0o700)


def damage_in_the_middle(database: Path) -> None:
    """Write 8 KiB of random bytes into the used block nearest the middle of ``database`` (a closed DuckDB file):
    damage only in a free block would harm nothing, and nothing would ever read it."""
    with duckdb.connect(str(database), read_only=True) as conn:
        block_size = int(conn.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0])
        tables = conn.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()")
        used = {
            int(block)
            for (table,) in tables.fetchall()
            for (block,) in conn.execute(
                f"SELECT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
            ).fetchall()
        }
    assert used, f"{database} keeps no table data in blocks"

    def middle_of(block: int) -> int:
        return _DUCKDB_HEADERS + block * block_size + block_size // 2

    middle = database.stat().st_size // 2
    block = min(used, key=lambda b: abs(middle_of(b) - middle))
    with database.open("r+b") as f:
        f.seek(middle_of(block) - _DAMAGE // 2)
        f.write(os.urandom(_DAMAGE))
