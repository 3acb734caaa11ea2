"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.store import DocumentRow, Filters, MemoryRow, NewMemory, Store

__all__ = ["DocumentRow", "Filters", "MemoryRow", "NewMemory", "Store"]
