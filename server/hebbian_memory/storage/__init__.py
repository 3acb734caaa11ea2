"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.store import (
    PURGE_DUE,
    Chain,
    DocumentRow,
    Filters,
    Link,
    MemoryRow,
    MemoryState,
    NewMemory,
    Store,
)

__all__ = ["PURGE_DUE", "Chain", "DocumentRow", "Filters", "Link", "MemoryRow", "MemoryState", "NewMemory", "Store"]
