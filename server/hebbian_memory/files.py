"""Files only their owner may read (exports, the map page), written whole or not at all; the private data dir."""

import logging
import os
import stat
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hebbian_memory.errors import StorageError

log = logging.getLogger(__name__)

PRIVATE = 0o600


@contextmanager
def private_file(path: Path) -> Generator[IO[str]]:
    """A text stream to ``path + ".partial"``, owner-only from its creation, fsynced and renamed to ``path`` at the
    end; on an error the partial file is removed and ``path`` is left as it was. Raises OSError."""
    partial = path.with_name(path.name + ".partial")
    # A partial file left by a crash keeps its mode under O_TRUNC, so it goes first; O_EXCL then guarantees the
    # file this writes was created here, with PRIVATE, before any byte of it existed.
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`private_file`."""
    with private_file(path) as out:
        out.write(text)


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
