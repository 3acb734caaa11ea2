"""Which storage fault an I/O error is (disk full, read-only, failing) and the message that says so.

An OSError carries its errno. DuckDB's errors carry only text, which we never parse: the folder is asked
instead (a small probe write, its free space), so the answer is the filesystem's, not a guess from wording.
"""

import errno
import os
import secrets
import shutil
from pathlib import Path

from hebbian_memory.errors import FaultKind, StorageFaultError
from hebbian_memory.files import NOFOLLOW

__all__ = ["NEARLY_FULL_BYTES", "classify", "fault"]

# Below this much free space a failed database write is reported as a full disk (DuckDB writes 256 KiB blocks).
NEARLY_FULL_BYTES = 16 << 20
_FULL = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name))
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_PROBE = ".hebbian-write-probe"


def classify(folder: Path, error: BaseException) -> FaultKind:
    """What kind of fault ``error`` (raised while writing in ``folder``) is."""
    code = error.errno if isinstance(error, OSError) else _probe(folder)
    if code in _FULL:
        return "full"
    if code in _READ_ONLY:
        return "read-only"
    return "full" if _free(folder) < NEARLY_FULL_BYTES else "io"


def fault(path: Path, error: BaseException, doing: str, outcome: str) -> StorageFaultError:
    """A typed error for a write of ``path`` that failed; ``doing`` names the write ("saving the vector index"),
    ``outcome`` says what the call changed ("Nothing was stored.")."""
    folder = path if path.is_dir() else path.parent
    kind = classify(folder, error)
    if kind == "full":
        problem = f"The disk is full: {doing} failed at {path} ({_free(folder) // 1024} KiB free there)."
        advice = (
            f"Free space on the disk holding {folder} (or move the data dir) and call again; recall keeps "
            "working meanwhile, and writes resume by themselves once there is room. Tell the user the disk is full."
        )
    elif kind == "read-only":
        problem = f"The data dir is read-only: {doing} failed at {path} ({_reason(error)})."
        advice = (
            f"Make {folder} writable again for this server's user (its permissions, or remount its disk "
            "read-write) and call again; recall keeps working meanwhile, and writes resume by themselves. "
            "Tell the user the data dir cannot be written."
        )
    else:
        problem = f"The disk reported an error: {doing} failed at {path} ({_reason(error)})."
        advice = f"Check the disk holding {folder} (its kernel log, its free space) and call again."
    return StorageFaultError(kind, path, problem, outcome, advice)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _probe(folder: Path) -> int | None:
    """The errno a small write in ``folder`` fails with now; None when it succeeds."""
    # A new file under a random name: a fixed one, planted as a link, would have the probe written through it.
    probe = folder / f"{_PROBE}.{secrets.token_hex(8)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
        try:
            os.write(fd, b"\0" * 65536)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        return e.errno
    return None


def _free(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0
