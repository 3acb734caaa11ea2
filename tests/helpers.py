"""Test helpers: a deterministic embedder for scoring maths, and a real stdio client for end-to-end tests."""

import hashlib
import os
import socket
import sys
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult, TextContent

from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.retrieval.text import terms


class FakeEmbedder:
    """Bag of hashed stems: texts sharing words are similar, others are not. For unit tests only."""

    model_id = "test/fake-hash-256"
    dim = 256

    def load(self) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in terms(text) or ["empty"]:
                bucket = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts)


MODEL_CACHE_ENV = "HEBBIAN_MEMORY_MODEL_CACHE_DIR"
STORAGE_ENV = ("HEBBIAN_MEMORY_STORAGE_BACKEND", "HEBBIAN_MEMORY_STORAGE_URL")


def shared_model_cache() -> str | None:
    """The run's model cache (see conftest), for settings and server environments built from scratch."""
    return os.environ.get(MODEL_CACHE_ENV)


FIXED_TIME = "2026-03-02T09:00:00Z"  # server processes' stopped clock: a slow run cannot decay what a test compares


def base_env(data_dir: Path) -> dict[str, str]:
    """A bare environment for a server process: PATH, a HOME beside the data dir, the run's model cache, and a
    stopped clock (``FIXED_TIME``)."""
    cache = shared_model_cache()
    # The backend a test runs its servers on (tests/conftest.py server_backend): the test's own database.
    storage = {name: os.environ[name] for name in STORAGE_ENV if name in os.environ}
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data_dir.parent),
        "HEBBIAN_MEMORY_FIXED_TIME": FIXED_TIME,
        **({MODEL_CACHE_ENV: cache} if cache else {}),
        **storage,
    }


def server_params(data_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """Parameters that start the real server as a subprocess, the way a client config does."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "hebbian_memory", "--data-dir", str(data_dir), *extra_args],
        env={**base_env(data_dir), **(env or {})},
    )


@asynccontextmanager
async def stdio_client(data_dir: Path, *extra_args: str) -> AsyncGenerator[Client]:
    async with Client(server_params(data_dir, *extra_args), read_timeout_seconds=120) as client:
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful tool call."""
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) should have failed but returned {result.structured_content}"
    return error_text(result)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
