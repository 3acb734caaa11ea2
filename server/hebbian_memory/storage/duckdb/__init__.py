"""The DuckDB store: one file, its schema and migrations, and every SQL statement. It implements
``storage.base.MemoryStore``; only the composition points (which open it) import this package."""

from hebbian_memory.storage.duckdb.store import Store

__all__ = ["Store"]
