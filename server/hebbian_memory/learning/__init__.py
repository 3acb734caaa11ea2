"""Hebbian learning: the pure rules, the link graph in memory, consolidation, and the use signal."""

__all__ = []
