"""The export file: JSON lines of sessions, memories and links, and reading it back.

Line 1 is a header; then every session, every memory (with its embedding, base64 float32, so a restore
needs no re-embedding) and every link with its weight and tier. Import reads any such file, also one
written by hand with just ``{"type": "memory", "content": "..."}`` lines. The :class:`Remapper` turns the
file's ids into the target's: an id is kept where it is free, else the row gets a new one, and references
(a memory's session, a link's ends) follow.
"""

import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from hebbian_memory import files
from hebbian_memory.errors import HebbianMemoryError, ImportStoppedError, InvalidInputError, StorageError
from hebbian_memory.models import ExportResult, ImportResult
from hebbian_memory.service.records import (
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    Header,
    LinkRecord,
    MemoryRecord,
    Record,
    SessionRecord,
    Time,
    parse,
)
from hebbian_memory.storage import Link, SessionRow, StoredMemory, Transfer

__all__ = [
    "BATCH",
    "FORMAT",
    "FORMAT_VERSION",
    "Header",
    "ImportSummary",
    "LinkRecord",
    "MemoryRecord",
    "Record",
    "Remapper",
    "Send",
    "SessionRecord",
    "Time",
    "export",
    "import_file",
    "parse",
    "read",
    "write_line",
]

BATCH = 500  # records per import call


# --- writing ------------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def write_line(out: IO[str], kind: str, row: dict[str, Any]) -> None:
    record = {"type": kind, **{k: _json(v) for k, v in row.items()}}
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def export(store: Transfer, path: Path, now: datetime, model: str | None) -> ExportResult:
    """Write the whole memory to ``path`` from one snapshot (a temp file renamed into place; owner-only)."""
    path = path.expanduser().absolute()
    try:
        with files.private_file(path) as out, store.export_rows() as snapshot:
            totals = snapshot.totals()
            head = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "exported_at": now,
                "schema_version": snapshot.schema_version(),
                "embedding_model": model,
                "sessions": totals.sessions,
                "memories": totals.memories,
                "links": totals.links,
            }
            write_line(out, "header", head)
            for session in snapshot.sessions():
                write_line(out, "session", _session_line(session))
            for memory in snapshot.memories():
                write_line(out, "memory", _memory_line(memory))
            for link in snapshot.links():
                write_line(out, "link", _link_line(link))
    except OSError as e:
        raise StorageError(f"Cannot write the export to {path}: {e.strerror}. Choose a writable path.") from e
    return ExportResult(
        path=str(path),
        sessions=totals.sessions,
        memories=totals.memories,
        links=totals.links,
        bytes=path.stat().st_size,
    )


# The lines' fields, in the order the format has always written them.


def _session_line(s: SessionRow) -> dict[str, Any]:
    return {
        "id": s.id,
        "transport": s.transport,
        "client_name": s.client_name,
        "client_version": s.client_version,
        "project": s.project,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
    }


def _memory_line(m: StoredMemory) -> dict[str, Any]:
    """A memory's fields (not its content hash: derived from the content, recomputed on import); its use record's
    after them when it has one. Vectors as float32 little-endian bytes (base64 in the file)."""
    line: dict[str, Any] = {
        "id": m.id,
        "project": m.project,
        "content": m.content,
        "tags": list(m.tags),
        "metadata": m.metadata,
        "importance": m.importance,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "event_time": m.event_time,
        "last_accessed_at": m.last_accessed_at,
        "access_count": m.access_count,
        "strength": m.strength,
        "tier": m.tier,
        "session_id": m.session_id,
        "replay_count": m.replay_count,
        "last_replayed_at": m.last_replayed_at,
        "embedding_model": m.embedding_model,
        "embedding": np.asarray(m.embedding, dtype="<f4").tobytes(),
    }
    if m.use is not None:
        u = m.use
        line |= {
            "uses": u.uses,
            "misleads": u.misleads,
            "used_at": u.used_at,
            "cue": None if u.cue is None else np.asarray(u.cue, dtype="<f4").tobytes(),
            "cue_weight": u.cue_weight,
        }
    return line


def _link_line(link: Link) -> dict[str, Any]:
    return {
        "source_id": link.source_id,
        "target_id": link.target_id,
        "weight": link.weight,
        "tier": link.tier,
        "kind": link.kind,
        "co_access_count": link.co_access_count,
        "created_at": link.created_at,
        "updated_at": link.updated_at,
        "last_strengthened_at": link.last_strengthened_at,
    }


# --- reading ------------------------------------------------------------------------------------------------


def read(path: Path) -> Iterator[tuple[int, Header | Record]]:
    """(bytes read so far, record) for every record of the file at ``path``, in file order."""
    done = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            done += len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidInputError(f"line {number}: not UTF-8 ({e.reason}).") from e
            record = parse(line, number)
            if record is not None:
                yield done, record


class Remapper:
    """Carries the file's ids over to the target's: records go out with references already translated."""

    def __init__(self) -> None:
        self.sessions: dict[int, int] = {}
        self.memories: dict[int, int] = {}
        self.orphan_links = 0  # links whose ends were not (yet) imported

    def memory(self, record: MemoryRecord) -> MemoryRecord:
        if record.session_id is None:
            return record
        return record.model_copy(update={"session_id": self.sessions.get(record.session_id)})

    def link(self, record: LinkRecord) -> LinkRecord | None:
        a, b = self.memories.get(record.source_id), self.memories.get(record.target_id)
        if a is None or b is None or a == b:
            self.orphan_links += 1
            return None
        return record.model_copy(update={"source_id": min(a, b), "target_id": max(a, b)})

    def translate(self, record: Record) -> Record | None:
        """The record with its references in the target's ids; None for a link whose ends were not imported."""
        if isinstance(record, MemoryRecord):
            return self.memory(record)
        if isinstance(record, LinkRecord):
            return self.link(record)
        return record

    def learn(self, kind: str, old: list[int | None], new: list[int]) -> None:
        target = self.sessions if kind == "session" else self.memories
        for before, after in zip(old, new, strict=True):
            if before is not None:
                target[before] = after


Send = Callable[[str, list[dict[str, Any]]], Awaitable[ImportResult]]


@dataclass
class ImportSummary:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    duplicates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    redacted: int = 0
    orphan_links: int = 0

    def stopped(self, error: HebbianMemoryError, last_line: int | None) -> ImportStoppedError:
        """``error`` with what the import stored before it: every batch up to ``last_line`` (None: none)."""
        if last_line is None:
            return ImportStoppedError(f"{error} Nothing was stored. Fix that line and import the file again.")
        made, skipped = self.created, self.duplicates
        present = (
            f" (and found {skipped['memory']:,} memories, {skipped['link']:,} links and {skipped['session']:,} "
            "sessions already present)"
            if any(skipped.values())
            else ""
        )
        return ImportStoppedError(
            f"{error} The import stopped after line {last_line}, having stored {made['memory']:,} memories, "
            f"{made['link']:,} links and {made['session']:,} sessions{present}; nothing after line {last_line} "
            "was stored. Fix that line and import the file again: memories and links already stored are skipped, "
            "not stored twice."
        )


async def import_file(path: Path, send: Send, progress: Callable[[int], None] = lambda _done: None) -> ImportSummary:
    """Read the file at ``path`` and send its records in batches of one kind, ids translated as they go;
    ``progress`` gets the bytes read so far after each batch. A bad line stops it with an error naming the line
    and what earlier batches stored. Safe to run again: duplicates are skipped."""
    remap = Remapper()
    summary = ImportSummary()
    batch: list[Record] = []
    last_line: int | None = None  # the last line of the last batch the owner took

    async def flush() -> None:
        nonlocal last_line
        if not batch:
            return
        kind = batch[0].type
        ready = [r for r in map(remap.translate, batch) if r is not None]
        if ready:
            result = await send(kind, [r.model_dump(mode="json") for r in ready])
            summary.created[kind] += result.created
            summary.duplicates[kind] += result.duplicates
            summary.redacted += result.redacted
            if kind != "link":
                remap.learn(kind, [getattr(r, "id", None) for r in ready], result.ids)
        last_line = batch[-1].line
        batch.clear()

    done = 0
    try:
        for done, record in read(path):
            if isinstance(record, Header):
                continue
            if batch and (batch[0].type != record.type or len(batch) >= BATCH):
                await flush()
                progress(done)
            batch.append(record)
        await flush()
    except HebbianMemoryError as e:
        raise summary.stopped(e, last_line) from e
    progress(done)
    summary.orphan_links = remap.orphan_links
    return summary
