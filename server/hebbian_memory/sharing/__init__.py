"""Many servers, one memory: the first server process on a data dir owns the database; the others forward
their calls to it over a local socket and take over when it exits."""

__all__ = []
