"""A database damaged in the middle (random bytes, or the file cut short) is refused at open, by name, and never
written to: by the Store, by a real server over stdio, and by `hebbian-memory doctor`."""

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import anyio
import numpy as np
import pytest
from mcp import Client, MCPError
from mcp.client.stdio import stdio_client

from hebbian_memory.errors import DatabaseDamagedError
from hebbian_memory.inputs import content_hash
from hebbian_memory.storage import NewMemory, Store
from tests.helpers import base_env, server_params

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
MEMORIES = 3000  # about 6 MB, most of it embedding blocks: the middle of the file is table data


@dataclass(frozen=True)
class FileState:
    data: bytes
    mtime_ns: int


def _state(path: Path) -> FileState:
    return FileState(path.read_bytes(), path.stat().st_mtime_ns)


def _damaged_store(folder: Path, how: str) -> Path:
    """A store as a server leaves it (closed, checkpointed), then damaged in its middle."""
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "memory.duckdb"
    store = Store.open(path, NOW)
    rng = np.random.default_rng(0)
    rows = [
        NewMemory(
            f"Memory {i}: something said in a conversation.",
            content_hash(str(i)),
            ("t",),
            {"n": i},
            0.5,
            NOW,
            rng.standard_normal(384).astype(np.float32),
            "m",
            None,
        )
        for i in range(MEMORIES)
    ]
    store.insert(rows, NOW)
    store.close()
    size = path.stat().st_size
    if how == "random bytes":
        with path.open("r+b") as f:
            f.seek(size // 2)
            f.write(rng.bytes(8192))
    else:
        os.truncate(path, size // 2)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # an old mtime, so any write would show
    return path


HOW = ["random bytes", "cut in half"]


async def _use_the_server(data_dir: Path, errlog: TextIO) -> None:
    with anyio.fail_after(120):
        async with Client(stdio_client(server_params(data_dir), errlog=errlog), read_timeout_seconds=120) as client:
            await client.list_tools()
            await client.call_tool("stats", {})


@pytest.mark.parametrize("how", HOW)
def test_a_store_damaged_in_the_middle_is_refused_by_name_and_not_touched(tmp_path: Path, how: str) -> None:
    path = _damaged_store(tmp_path / "data", how)
    before = _state(path)
    with pytest.raises(DatabaseDamagedError, match=str(path)) as caught:
        Store.open(path, NOW)
    assert "hebbian-memory import" in str(caught.value)
    assert _state(path) == before
    assert [p.name for p in path.parent.iterdir()] == ["memory.duckdb"], "no WAL or anything else beside it"


@pytest.mark.anyio
@pytest.mark.parametrize("how", HOW)
async def test_a_server_on_a_damaged_store_refuses_to_start_and_names_the_file(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "data"
    path = _damaged_store(data_dir, how)
    before = _state(path)
    errlog = tmp_path / "stderr.txt"
    with errlog.open("w") as err, pytest.raises(ExceptionGroup) as failed:
        await _use_the_server(data_dir, err)
    assert failed.group_contains(MCPError, match="Connection closed", depth=2), failed.value
    stderr = errlog.read_text()
    assert str(path) in stderr, stderr
    assert "hebbian-memory import" in stderr
    assert "Traceback" not in stderr
    assert _state(path) == before


@pytest.mark.parametrize("how", HOW)
def test_doctor_names_a_damaged_store_and_how_to_restore_it(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "data"
    path = _damaged_store(data_dir, how)
    before = _state(path)
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_memory", "--data-dir", str(data_dir), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=base_env(data_dir),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    bad = [line for line in done.stdout.splitlines() if line.startswith("BAD  database:")]
    assert len(bad) == 1, done.stdout
    assert str(path) in bad[0]
    assert f"mv {path} {path}.damaged" in done.stdout
    assert "hebbian-memory import" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert _state(path) == before
