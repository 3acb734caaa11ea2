"""The PostgreSQL + pgvector store: a connection pool, its schema and migrations, and every SQL statement. It
implements ``storage.base.MemoryStore``; only the composition points (which open it) import this package."""

from hebbian_memory.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
