"""Files the server and CLI write: made new under a random name beside their target, then renamed over it.

Someone who can write into a target's folder (an export's, say) can plant a symlink at any name they can
predict, such as a fixed ``FILE.partial``; a writer that opened it would write through it, into a file of theirs
or of the user's. So nothing here opens a name it did not just create: a file is created with
O_CREAT|O_EXCL|O_NOFOLLOW (owner-only, under a random name, so a planted name fails instead of being followed),
written, fsynced and renamed over the target. rename replaces a symlink at the target itself and never writes
through it: an export aimed at a link replaces the link. Writers that open files by name themselves (usearch,
DuckDB) get a fresh owner-only folder beside the target instead, and their file is moved out of it.

`private_dir` keeps the data dir itself reachable by its owner only.
"""

import logging
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hebbian_memory.errors import StorageError

__all__ = [
    "NOFOLLOW",
    "PRIVATE",
    "move_into_place",
    "private_dir",
    "private_file",
    "private_folder",
    "remove_leftovers",
    "write_private",
]

log = logging.getLogger(__name__)

PRIVATE = 0o600
# Windows has neither O_NOFOLLOW (a symlink there needs a privilege) nor a POSIX text mode without O_BINARY.
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0)
_RANDOM_HEX = 16


def _partial(target: Path) -> Path:
    """A name beside ``target`` that nobody can guess in advance."""
    return target.with_name(f"{target.name}.{secrets.token_hex(_RANDOM_HEX // 2)}.partial")


@contextmanager
def _replacing(target: Path) -> Generator[int]:
    """A descriptor of a new owner-only file renamed over ``target`` when the block ends (the caller has
    closed it by then); on an error the file is removed and ``target`` is left as it was."""
    partial = _partial(target)
    fd = os.open(partial, _CREATE, PRIVATE)
    try:
        yield fd
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def private_file(path: Path) -> Generator[IO[str]]:
    """A text stream to a new owner-only file, fsynced and renamed over ``path`` at the end; on an error
    ``path`` is left as it was. Raises OSError."""
    with _replacing(path) as fd, os.fdopen(fd, "w", encoding="utf-8") as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`private_file`."""
    with private_file(path) as out:
        out.write(text)


@contextmanager
def private_folder(beside: Path) -> Generator[Path]:
    """A new folder only its owner may enter, with a random name in ``beside``'s folder (so a file moved out of
    it with :func:`move_into_place` stays on one file system), removed with what is left in it at the end."""
    folder = _partial(beside)
    folder.mkdir(mode=0o700)  # fails on any name already there, a planted link included
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def move_into_place(written: Path, target: Path) -> None:
    """Make ``written`` (a file in a :func:`private_folder`) owner-only and durable, and rename it over ``target``."""
    fd = os.open(written, os.O_RDWR | NOFOLLOW | getattr(os, "O_BINARY", 0))  # Windows fsyncs writable ones only
    try:
        if sys.platform != "win32":  # Windows keeps no POSIX mode beyond read-only
            os.fchmod(fd, PRIVATE)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(written, target)


def remove_leftovers(target: Path) -> None:
    """Remove the partial files and folders a crashed writer of ``target`` left beside it. Only for targets one
    process writes at a time (the data dir's owner), or this would remove another writer's work in progress."""
    pattern = re.compile(re.escape(target.name) + rf"\.[0-9a-f]{{{_RANDOM_HEX}}}\.partial")
    try:
        entries = list(os.scandir(target.parent))
    except FileNotFoundError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)  # a link itself, never what it points to


def private_dir(folder: Path) -> None:
    """Make ``folder`` (created if missing) reachable by its owner only. One that others may enter is tightened to
    0700 when it is ours, with a warning, and so are our files in it (made before this: a WAL or index is read by
    whoever can reach it); another user's is refused. Raises StorageError."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "nt":  # no modes: a Windows profile folder is private by its ACL
        return
    found = folder.stat()
    mode = stat.S_IMODE(found.st_mode)
    if not mode & 0o077:
        return
    if found.st_uid != os.geteuid():
        raise StorageError(
            f"The data dir {folder} lets other users in (mode {mode:o}) and belongs to another user (uid "
            f"{found.st_uid}), so this server cannot make it private. Its owner can run `chmod 700 {folder}`; or "
            "point this server at a folder of your own (--data-dir or HEBBIAN_MEMORY_DATA_DIR)."
        )
    os.chmod(folder, 0o700)  # first, so nothing new appears in it meanwhile
    opened: list[str] = []
    for entry in folder.iterdir():
        inside = entry.lstat()  # a symbolic link is left alone: chmod would follow it
        ours = (stat.S_ISREG(inside.st_mode) or stat.S_ISSOCK(inside.st_mode)) and inside.st_uid == found.st_uid
        if ours and stat.S_IMODE(inside.st_mode) & 0o077:
            os.chmod(entry, stat.S_IMODE(inside.st_mode) & 0o700)
            opened.append(entry.name)
    files = f" and its files {', '.join(sorted(opened))} to owner-only" if opened else ""
    log.warning("the data dir %s let other users in (mode %o): changed it to 0700%s", folder, mode, files)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def try_lock(fd: int) -> bool:
        """Take the exclusive lock on the open file ``fd`` if no one holds it; it goes when ``fd`` is closed."""
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        """Take the exclusive lock on the open file ``fd`` if no one holds it; it goes when ``fd`` is closed."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
