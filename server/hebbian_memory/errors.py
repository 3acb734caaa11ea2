"""The exception tree. Every error the service raises on purpose is one of these.

HebbianMemoryError                 base; ``str(err)`` is a message fit for the model or user
├── InvalidInputError             an argument is wrong; the message says what to send instead
├── MemoryNotFoundError           ids that name no stored memory (``missing`` lists them)
├── ConfigError                   a setting, config file or environment variable is wrong
├── ModelError                    the embedding model is missing, damaged or failed to load
├── ImportStoppedError            an import stopped part way; the message says where and what it stored
└── StorageError                  the database cannot be used
    ├── DatabaseLockedError       another process (not one of ours) holds the database file
    ├── DatabaseDamagedError      the database file is unreadable; never reset or overwritten
    └── StorageFaultError         the disk refused a write: full, read-only or failing (``kind``); the
                                  message says what the call changed and what to do
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

__all__ = [
    "ConfigError",
    "DatabaseDamagedError",
    "DatabaseLockedError",
    "FaultKind",
    "HebbianMemoryError",
    "ImportStoppedError",
    "InvalidInputError",
    "MemoryNotFoundError",
    "ModelError",
    "StorageError",
    "StorageFaultError",
    "StoredMeanwhileError",
]


class HebbianMemoryError(Exception):
    """Base of every error hebbian-memory raises on purpose."""


class InvalidInputError(HebbianMemoryError):
    """An argument was rejected; nothing was changed."""


class MemoryNotFoundError(HebbianMemoryError):
    """Some ids name no stored memory; nothing was changed."""

    def __init__(self, missing: Iterable[int]) -> None:
        self.missing = sorted(set(missing))
        shown = ", ".join(str(i) for i in self.missing[:20])
        more = f" and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
        super().__init__(
            f"No memory with id {shown}{more}. Nothing was changed. "
            "The ids may have been forgotten; use recall to find current ids."
        )


class ConfigError(HebbianMemoryError):
    """A setting is invalid."""


class ModelError(HebbianMemoryError):
    """The embedding model could not be loaded or run."""


class ImportStoppedError(HebbianMemoryError):
    """An import stopped at a line; what came before it may have been stored, and the message says what."""


class StorageError(HebbianMemoryError):
    """The database could not be used."""


class StoredMeanwhileError(StorageError):
    """An insert met a (project, content hash) another server sharing the database stored since the caller looked;
    nothing of the insert was stored. Looking again finds it."""


class DatabaseLockedError(StorageError):
    """Another process holds the database file's lock."""


class DatabaseDamagedError(StorageError):
    """The database file exists but cannot be opened; it is left untouched."""


FaultKind = Literal["full", "read-only", "io"]


class StorageFaultError(StorageError):
    """The disk refused to store something (full, read-only, failing). The server stays up, reads go on, and
    writes resume by themselves once the disk takes them again."""

    def __init__(self, kind: FaultKind, path: Path, problem: str, outcome: str, advice: str) -> None:
        self.kind: FaultKind = kind
        self.path = path
        self.problem = problem  # what the disk refused, and why
        self.outcome = outcome  # what the call changed
        self.advice = advice  # what to do
        super().__init__(f"{problem} {outcome} {advice}")

    def with_outcome(self, outcome: str) -> "StorageFaultError":
        """The same fault, told from the point of view of another call (what that call changed)."""
        return StorageFaultError(self.kind, self.path, self.problem, outcome, self.advice)
