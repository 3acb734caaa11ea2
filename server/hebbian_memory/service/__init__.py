"""The memory service: one facade (`memory.MemoryService`) and one module per operation."""

__all__ = []
