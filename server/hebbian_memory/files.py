"""Files only their owner may read (exports, the map page), written whole or not at all."""

import os
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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
