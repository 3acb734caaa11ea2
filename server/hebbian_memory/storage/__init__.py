"""Storage: the Protocols the layers above call (``base``), the neutral rows they pass (``rows``), and the DuckDB
store that implements them (its schema, migrations and every SQL statement)."""

from hebbian_memory.storage.base import (
    DocumentRows,
    ExportRows,
    Lifecycle,
    LinkRows,
    MemoryRows,
    MemoryStore,
    SessionRows,
    Transfer,
    UseRows,
)
from hebbian_memory.storage.rows import (
    PURGE_DUE,
    Chain,
    Counts,
    DocumentRow,
    Event,
    Filters,
    Link,
    MemoryRow,
    MemoryState,
    NewMemory,
    SessionRow,
    StoredMemory,
    Totals,
    UseRow,
)
from hebbian_memory.storage.store import Store

__all__ = [
    "PURGE_DUE",
    "Chain",
    "Counts",
    "DocumentRow",
    "DocumentRows",
    "Event",
    "ExportRows",
    "Filters",
    "Lifecycle",
    "Link",
    "LinkRows",
    "MemoryRow",
    "MemoryRows",
    "MemoryState",
    "MemoryStore",
    "NewMemory",
    "SessionRow",
    "SessionRows",
    "Store",
    "StoredMemory",
    "Totals",
    "Transfer",
    "UseRow",
    "UseRows",
]
