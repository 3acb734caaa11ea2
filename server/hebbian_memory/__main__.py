"""``python -m hebbian_memory``: the same as the ``hebbian-memory`` command."""

from hebbian_memory.cli import main

__all__ = []

main()
