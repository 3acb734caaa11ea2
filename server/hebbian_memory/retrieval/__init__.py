"""What recall reads and how it ranks: the vector and keyword indexes, the per-memory features, ranking."""

__all__ = []
