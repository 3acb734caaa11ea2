"""Tests of transport/ through the real MCP client: stdio, HTTP, the handshake, resources, fuzzing."""
