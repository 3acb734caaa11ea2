"""Who owns a data dir: an OS file lock (released by the kernel even on SIGKILL) and the owner's address file."""

import errno
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from hashlib import blake2b
from pathlib import Path
from typing import Any, Literal

from hebbian_memory import files
from hebbian_memory.errors import StorageError

__all__ = [
    "ADDRESS_FILE",
    "LOCK_FILE",
    "SOCKET_FILE",
    "OwnerAddress",
    "OwnerLock",
    "new_token",
    "read_address",
    "remove_address",
    "socket_path",
    "write_address",
]

LOCK_FILE = "owner.lock"
ADDRESS_FILE = "owner.json"
SOCKET_FILE = "owner.sock"
_MAX_SOCKET_PATH = 100  # sun_path holds 104-108 bytes depending on the OS


@dataclass(frozen=True, slots=True)
class OwnerAddress:
    """Where the owner listens, and the secret a client must present (loopback TCP is open to every user)."""

    pid: int
    kind: Literal["unix", "tcp"]
    path: str  # the socket file (unix) or "127.0.0.1:<port>" (tcp)
    token: str


class OwnerLock:
    """An exclusive, non-blocking lock on ``<data_dir>/owner.lock``; held for the owner's whole life."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # Never through a link: a lock taken on a planted one's target would be held on someone else's file.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | files.NOFOLLOW, 0o600)
        except OSError as e:
            if e.errno == errno.ELOOP or self._path.is_symlink():
                raise StorageError(
                    f"{self._path} is a symbolic link, which this server does not follow (someone who can write "
                    f"into {self._path.parent} may have planted it). Remove the link and start again."
                ) from e
            raise
        if not files.try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def socket_path(data_dir: Path) -> Path:
    """The owner's Unix socket: in the data dir when the path is short enough, else in a private temp folder."""
    path = data_dir / SOCKET_FILE
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = blake2b(str(data_dir).encode(), digest_size=8).hexdigest()
    folder = Path(tempfile.gettempdir()) / f"hebbian-memory-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise StorageError(f"{folder} must belong to you and be private (chmod 700) to hold the owner's socket.")
    return folder / f"{digest}.sock"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def write_address(data_dir: Path, address: OwnerAddress) -> None:
    """Publish the owner's address atomically, readable by the user only."""
    # Never through a fixed temporary name: one planted as a link would hand the token to whoever planted it.
    files.write_private(data_dir / ADDRESS_FILE, json.dumps(asdict(address)))


def read_address(data_dir: Path) -> OwnerAddress | None:
    """The published address, or None when there is none yet (or it is half written or foreign)."""
    try:
        raw: Any = json.loads((data_dir / ADDRESS_FILE).read_text())
        return OwnerAddress(int(raw["pid"]), raw["kind"], str(raw["path"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_address(data_dir: Path, address: OwnerAddress) -> None:
    """Withdraw our address (only if it is still ours) and our socket file."""
    if read_address(data_dir) == address:
        (data_dir / ADDRESS_FILE).unlink(missing_ok=True)
    if address.kind == "unix":
        Path(address.path).unlink(missing_ok=True)
