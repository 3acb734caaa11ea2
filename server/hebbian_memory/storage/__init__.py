"""Storage: the DuckDB schema, its migrations and every SQL statement."""

from hebbian_memory.storage.store import MemoryRow, NewMemory, Store

__all__ = ["MemoryRow", "NewMemory", "Store"]
