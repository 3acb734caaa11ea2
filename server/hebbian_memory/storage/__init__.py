"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.store import DocumentRow, MemoryRow, NewMemory, Store

__all__ = ["DocumentRow", "MemoryRow", "NewMemory", "Store"]
