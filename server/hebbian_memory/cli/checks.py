"""Checks behind `hebbian-memory doctor`: each says what it found and, when something is wrong, how to fix it."""

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hebbian_memory.config import Settings
from hebbian_memory.embedding.embedder import DEFAULT_MODEL, TOKENIZER_DIR, verified_bundled_model
from hebbian_memory.embedding.quantize import TOKENIZER_FILES, cached_model_dir
from hebbian_memory.errors import DatabaseDamagedError, HebbianMemoryError
from hebbian_memory.models import StatsResult
from hebbian_memory.sharing.election import ADDRESS_FILE, read_address

__all__ = ["Check", "IndexFacts", "PostgresFacts", "data_dir", "database", "model", "owner", "postgres"]


class IndexFacts(Protocol):
    """What doctor reads of an index (storage/postgres/health.py's IndexHealth, seen from here)."""

    @property
    def name(self) -> str: ...
    @property
    def exists(self) -> bool: ...
    @property
    def valid(self) -> bool: ...


class PostgresFacts(Protocol):
    """What doctor reads of a PostgreSQL database (its PostgresHealth, which this layer may not import)."""

    @property
    def server_version(self) -> str: ...
    @property
    def vector_version(self) -> str | None: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def expected_schema(self) -> int: ...
    @property
    def vector_index(self) -> IndexFacts: ...
    @property
    def text_index(self) -> IndexFacts: ...


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def model(settings: Settings) -> Check:
    if settings.model.name != DEFAULT_MODEL:
        return Check("model", True, f"{settings.model.name} (fastembed; downloaded on first use when online)")
    missing = [name for name in TOKENIZER_FILES if not (TOKENIZER_DIR / name).is_file()]
    if missing:
        return Check("model", False, f"tokenizer files missing: {', '.join(missing)}", "Reinstall hebbian-memory.")
    try:
        path = verified_bundled_model()
    except HebbianMemoryError as e:
        return Check("model", False, str(e), "Reinstall hebbian-memory (uvx --reinstall hebbian-memory).")
    quantized = cached_model_dir(settings.model_cache_dir)
    made = (
        f"its quantized copy at {quantized}, sha256 verified"
        if quantized is not None
        else f"its quantized copy is made in {settings.model_cache_dir} at the next start (once per user)"
    )
    return Check("model", True, f"bundled all-MiniLM-L6-v2 int8 at {path}, sha256 verified; {made}")


def data_dir(settings: Settings) -> Check:
    folder = settings.data_dir
    if not folder.exists():
        return Check("data dir", True, f"{folder} does not exist yet; the first server creates it (private)")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if os.name != "nt" and mode & 0o077:
        return Check(
            "data dir",
            False,
            f"{folder} is readable by others (mode {mode:o}); memories are private",
            f"chmod 700 {folder} (a server or command started on it does this itself, if the folder is yours)",
        )
    if not os.access(folder, os.W_OK):
        return Check("data dir", False, f"{folder} is not writable", f"Give yourself write access to {folder}.")
    return Check("data dir", True, f"{folder} (mode {mode:o})")


def owner(settings: Settings) -> Check:
    address = read_address(settings.data_dir)
    if address is None:
        return Check("owner process", True, "no server is running on this data dir")
    try:
        os.kill(address.pid, 0)
    except ProcessLookupError:
        detail = f"pid {address.pid} in {ADDRESS_FILE} is gone (stale file); the next server replaces it"
        return Check("owner process", True, detail)
    except PermissionError:
        return Check(
            "owner process", False, f"pid {address.pid} belongs to another user", "Use a data dir of your own."
        )
    return Check("owner process", True, f"a server (pid {address.pid}) owns the data dir; others forward to it")


def database(stats: StatsResult | None, error: HebbianMemoryError | None, path: Path | str) -> list[Check]:
    """The database and both indexes, as the owner reported them (or the error that stopped it)."""
    if isinstance(error, DatabaseDamagedError):
        fix = (
            f"Stop every server on this data dir, move the file aside (mv {path} {path}.damaged; keep it), then "
            "`hebbian-memory import <your latest export file>`; without an export, the next start begins an empty "
            "memory."
        )
        return [Check("database", False, str(error), fix)]
    if error is not None or stats is None:
        return [Check("database", False, str(error), "See the message: it names the file and how to restore it.")]
    checks = [Check("database", True, f"{path}: {stats.memories} memories, {stats.links} links")]
    agree = stats.memories == stats.vector_index == stats.keyword_index
    detail = f"vector index {stats.vector_index}, keyword index {stats.keyword_index}, database {stats.memories}"
    fix = "Stop every server and delete vectors.usearch and vectors.usearch.json: they are rebuilt at the next start."
    checks.append(Check("indexes", agree, detail, "" if agree else fix))
    return checks


def postgres(health: PostgresFacts | None, error: HebbianMemoryError | None, where: str) -> list[Check]:
    """The PostgreSQL database (``where``: its URL without password): the server, pgvector, the schema and the
    two search indexes, as read before any server touched them."""
    if health is None:
        fix = "Check that the server runs and is reachable, and storage.url (user, host, port, database)."
        return [Check("postgresql", False, str(error), fix)]
    found = [Check("postgresql", True, f"{where}: PostgreSQL {health.server_version}")]
    if health.vector_version is None:
        fix = (
            "Install pgvector on the database server (e.g. the postgresql-<version>-pgvector package), then "
            "`CREATE EXTENSION vector;` in the database as a superuser (a server started on it does this when its "
            "user may)."
        )
        found.append(Check("pgvector", False, "the vector extension is not created in this database", fix))
    else:
        found.append(Check("pgvector", True, f"vector extension {health.vector_version}"))
    have, want = health.schema_version, health.expected_schema
    if have > want:
        fix = "Upgrade hebbian-memory: a newer version migrated this database."
        found.append(Check("schema", False, f"version {have}, newer than this hebbian-memory's {want}", fix))
    elif have < want:
        detail = "no tables yet" if have == 0 else f"version {have}, this hebbian-memory applies {want}"
        found.append(Check("schema", True, f"{detail}; the next server start migrates it"))
    else:
        found.append(Check("schema", True, f"version {have}"))
    if have:
        found.append(_index("vector index (HNSW)", health.vector_index, _HNSW_FIX))
        found.append(_index("keyword index (GIN)", health.text_index, _GIN_FIX))
    return found


_HNSW_FIX = "Start a hebbian-memory server on the database: it makes the index (for a large store, this takes a while)."
_GIN_FIX = "In the database: CREATE INDEX memories_search ON memories USING gin (search);"


def _index(name: str, index: IndexFacts, missing_fix: str) -> Check:
    if not index.exists:
        return Check(name, False, f"{index.name} is missing; searches read every row", missing_fix)
    if not index.valid:
        fix = f"In the database: REINDEX INDEX CONCURRENTLY {index.name};"
        return Check(name, False, f"{index.name} is invalid (a build failed); searches do not use it", fix)
    return Check(name, True, f"{index.name} valid")
