"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.base import (
    Chain,
    DocumentRow,
    Filters,
    Link,
    MemoryRow,
    MemoryState,
    NewMemory,
    UseRow,
)
from hebbian_memory.storage.core import PURGE_DUE
from hebbian_memory.storage.store import Store

__all__ = [
    "PURGE_DUE",
    "Chain",
    "DocumentRow",
    "Filters",
    "Link",
    "MemoryRow",
    "MemoryState",
    "NewMemory",
    "Store",
    "UseRow",
]
