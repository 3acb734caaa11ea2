"""A database damaged in the middle (random bytes, or the file cut short) is refused at open, by name, and never
written to: by the Store, by a real server over stdio, and by `hebbian-memory doctor`. So is damage confined to the
blocks of DuckDB's own indexes, which reading every table does not reach."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import anyio
import duckdb
import numpy as np
import pytest
from mcp import Client, MCPError
from mcp.client.stdio import stdio_client

from hebbian_memory.errors import DatabaseDamagedError
from hebbian_memory.inputs import content_hash
from hebbian_memory.storage import Chain, NewMemory
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.verify import EVERY_KEY_UP_TO, LINKS, indexed_columns, key_batches, lookup_query
from tests.helpers import base_env, server_params

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
MEMORIES = 3000  # about 6 MB, most of it embedding blocks: the middle of the file is table data
BLOCK = 256 * 1024  # DuckDB's block, after a 12 KiB header (one main header and two database headers)
HEADER = 3 * 4096


@dataclass(frozen=True)
class FileState:
    data: bytes
    mtime_ns: int


def _state(path: Path) -> FileState:
    return FileState(path.read_bytes(), path.stat().st_mtime_ns)


def _store(folder: Path, memories: int = MEMORIES) -> Path:
    """A store as a server leaves it (closed, checkpointed): one session, its memories linked one after another (so
    every table and index holds rows)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "memory.duckdb"
    store = Store.open(path, NOW)
    session = store.start_session("stdio", None, None, "default", NOW)
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
            session,
        )
        for i in range(memories)
    ]
    store.insert(rows, NOW, Chain(None, 0.5))
    store.close()
    return path


def _damaged_store(folder: Path, how: str) -> Path:
    """A store damaged in its middle."""
    path = _store(folder)
    rng = np.random.default_rng(0)
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


def _read_every_table(path: Path) -> None:
    """What verify-at-open did before it looked up the indexes: every column of every table read, read-only."""
    with duckdb.connect(str(path), read_only=True) as conn:
        for (table,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            conn.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{table}"').fetchall()


def _each_block_damaged(whole: Path, path: Path) -> Iterator[int]:
    """Copies of ``whole`` at ``path``, each with random bytes over one of its blocks, and that block's number."""
    path.parent.mkdir(mode=0o700)
    rng = np.random.default_rng(1)
    for block in range((whole.stat().st_size - HEADER) // BLOCK):
        for leftover in path.parent.iterdir():
            leftover.unlink()
        shutil.copyfile(whole, path)
        with path.open("r+b") as f:
            f.seek(HEADER + block * BLOCK)
            f.write(rng.bytes(BLOCK))
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        yield block


def _open_and_close(path: Path) -> str:
    """What Store.open says of the file: "" if it opens."""
    try:
        Store.open(path, NOW).close()
    except DatabaseDamagedError as e:
        return str(e)
    return ""


def test_damage_only_in_the_indexes_passes_a_read_of_every_table_and_is_refused_by_name(tmp_path: Path) -> None:
    """Random bytes over each block in turn; the blocks whose damage a read of every table (the check before this
    one) lets through hold indexes, or nothing anything reads. Open refuses each index's, names the file and the
    index, and leaves the file as it was, with nothing beside it."""
    path = tmp_path / "data" / "memory.duckdb"
    refused: dict[int, str] = {}
    untouched: dict[int, bool] = {}
    for block in _each_block_damaged(_store(tmp_path / "whole"), path):
        try:
            _read_every_table(path)
        except duckdb.Error:
            continue  # a table's block: refused before, as the tests above show
        before = _state(path)
        refused[block] = _open_and_close(path)
        untouched[block] = _state(path) == before and [p.name for p in path.parent.iterdir()] == ["memory.duckdb"]
    named = {b: m.split("reading the index on ")[1].split(":")[0] for b, m in refused.items() if m}
    # At 3,000 memories the larger indexes have blocks of their own (the small ones share blocks with table data,
    # which the read of every table reaches, or one of their own, then named here too). A block may hold several
    # indexes: the first one looked up is named.
    every = {"memories(id)", "memories(content_hash)", "access_events(id)", "associations(source_id, target_id)"}
    assert every <= set(named.values()), refused
    for block in named:
        assert str(path) in refused[block]
        assert "hebbian-memory import" in refused[block]
        assert untouched[block], block


def test_a_block_that_open_lets_through_is_one_nothing_reads(tmp_path: Path) -> None:
    """The blocks whose damage open lets through are ones nothing reads (free): new memories and links, a forget
    with its purge (a rewrite of every table), a checkpoint and a reopen all pass over them."""
    let_through: list[int] = []
    path = tmp_path / "data" / "memory.duckdb"
    for block in _each_block_damaged(_store(tmp_path / "whole"), path):
        try:
            store = Store.open(path, NOW)
        except DatabaseDamagedError:
            continue
        let_through.append(block)
        new = NewMemory("A new one.", content_hash("new"), (), {}, 0.5, NOW, np.ones(384, np.float32), "m", None)
        (added,) = store.insert([new], NOW, Chain(1, 0.5))
        store.delete(list(range(2, MEMORIES, 3)), purge_due=True)
        store.purge()
        store.close()
        store = Store.open(path, NOW)
        assert added in store.get([added])
        store.close()
    assert let_through, "a file of 3,000 memories has some"


@pytest.mark.parametrize("memories", [EVERY_KEY_UP_TO // 2, EVERY_KEY_UP_TO + 1000])
def test_every_index_is_looked_up_through_the_index(tmp_path: Path, memories: int) -> None:
    """Each one-column index's lookups are index scans (EXPLAIN ANALYZE says so), every key of a small table or
    one in 64 of a large one; with the links' two-column key (looked up by an insert), that is every index in the
    schema."""
    path = _store(tmp_path / "data", memories)
    with duckdb.connect(str(path), read_only=True) as conn:
        conn.execute("SET index_scan_max_count = 1000000000")
        looked_up = indexed_columns(conn)
        for table, column in looked_up:
            for keys in key_batches(conn, table, column):
                if len(keys) < 2:
                    continue  # one key in a table of one or two rows: too small to have blocks of its own
                query = "EXPLAIN ANALYZE " + lookup_query(table, column, len(keys))
                plan = conn.execute(query, keys).fetchall()[0][1]
                assert "Type: Index Scan" in plan, (table, column, plan)
        constraints = conn.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
        indexes = conn.execute("SELECT table_name, expressions FROM duckdb_indexes()").fetchall()
    every = {(str(t), tuple(str(c) for c in cols)) for t, cols in constraints}
    every |= {(str(t), (str(e).strip("[]"),)) for t, e in indexes}
    assert every == {(t, (c,)) for t, c in looked_up} | {LINKS}
    assert ("memories", ("content_hash",)) in every
    assert ("associations", ("source_id", "target_id")) in every
