"""The MCP face of the server: the SDK server, its tools, resources, sessions and the stdio handshake."""

__all__ = []
