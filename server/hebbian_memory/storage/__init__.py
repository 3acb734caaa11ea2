"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.store import Chain, DocumentRow, Filters, Link, MemoryRow, MemoryState, NewMemory, Store

__all__ = ["Chain", "DocumentRow", "Filters", "Link", "MemoryRow", "MemoryState", "NewMemory", "Store"]
