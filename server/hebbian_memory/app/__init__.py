"""The composition root: ``wiring`` builds the clock, embedder, store, service and node the settings describe,
without the MCP SDK (so one-off commands stay light); ``transport.app`` builds the MCP server on a node from it."""

__all__: list[str] = []
