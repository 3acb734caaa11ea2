"""The composition root: ``wiring`` builds the clock, embedder, store, service and node the settings describe
(without the MCP SDK, so one-off commands stay light); ``server`` builds the MCP server and its HTTP app on them."""

__all__: list[str] = []
