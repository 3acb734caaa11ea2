"""Export to and import from an export file (the format is portability's): the service's side, which checks
imported records like remember's and keeps the indexes and the link graph in step with what it stores."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from hebbian_memory import inputs
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.errors import InvalidInputError, MemoryNotFoundError, StoredMeanwhileError
from hebbian_memory.models import ExportResult, ImportResult, MemoryInput, MemoryView
from hebbian_memory.service import portability
from hebbian_memory.service.core import Core
from hebbian_memory.service.portability import LinkRecord, MemoryRecord, SessionRecord
from hebbian_memory.service.remember import Prepared, prepare
from hebbian_memory.service.scope import ProjectScope
from hebbian_memory.storage import Link, SessionRow, StoredMemory

__all__ = ["Archive"]


class Archive:
    """Whole memories out and in: get, recent, export, and the three kinds of import (sessions, memories,
    links)."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def get(self, ids: Sequence[int], scope: ProjectScope | None = None) -> list[MemoryView]:
        core = self._core
        wanted = inputs.ids(ids, "ids", core.settings.limits.max_ids)
        core.wait_ready()
        foreign = scope.foreign(core.store, wanted) if scope is not None else set[int]()
        rows = {} if foreign else core.store.get(wanted)
        if foreign or len(rows) < len(wanted):
            raise MemoryNotFoundError(foreign | (set(wanted) - rows.keys()))
        return [MemoryView.model_validate(rows[i], from_attributes=True) for i in wanted]

    def recent(self, limit: int, project: str) -> list[MemoryView]:
        core = self._core
        count = inputs.count(limit, "limit", core.settings.limits.max_k)
        core.wait_ready()
        ids = core.store.recent(count, inputs.project(project))
        return self.get(ids) if ids else []

    def export(self, path: Path) -> ExportResult:
        """Every session, memory and link to ``path`` (JSON lines), from one consistent snapshot: an online
        backup, taken while writers carry on."""
        core = self._core
        core.wait_ready()
        core.apply_learning()  # co-access pairs waiting for the flush loop are part of what was learned
        return portability.export(core.store, path, core.clock.now(), core.embedder.model_id)

    def import_sessions(self, records: Sequence[SessionRecord]) -> ImportResult:
        core = self._core
        core.wait_ready()
        rows: list[SessionRow] = []
        for n, r in enumerate(records, start=1):
            where = f"line {r.line}: " if r.line is not None else f"session {n} of this batch: "
            project = r.project and _in_record(inputs.project, r.project, where, "Nothing was stored.")
            rows.append(
                SessionRow(r.id, r.transport, r.client_name, r.client_version, project, r.started_at, r.ended_at)
            )
        with core.lock:
            ids, matched = core.store.import_sessions(rows)
        return ImportResult(ids=ids, created=len(ids) - matched, duplicates=matched)

    def import_memories(self, records: Sequence[MemoryRecord]) -> ImportResult:
        """Memories from an export (or any such file): validated and redacted like remember's; a memory whose
        text is already stored in its project is not stored again (its id is returned). Stored embeddings of
        the model in use are kept, others are computed."""
        core = self._core
        embedder = core.embedder
        limits = core.settings.limits
        outcome = f"None of this batch's {len(records)} memories were stored." if len(records) > 1 else "Not stored."
        prepared: list[tuple[str, Prepared]] = []
        for n, r in enumerate(records, start=1):
            item = MemoryInput(content=r.content, tags=r.tags, metadata=r.metadata, importance=r.importance)
            where = f"line {r.line}: " if r.line is not None else f"memory {n} of this batch: "
            project = _in_record(inputs.project, r.project, where, outcome)
            prepared.append((project, prepare(item, limits, core.redactor, where, outcome)))
        core.wait_ready()
        model, dim = embedder.model_id, embedder.dim
        vectors = [r.vector(model, dim) for r in records]
        missing = [i for i, v in enumerate(vectors) if v is None]
        for i, v in zip(missing, embedder.embed([prepared[i][1].content for i in missing]), strict=True):
            vectors[i] = v
        # Another server sharing the database may store some of these texts between the look and the write: the
        # import is refused whole, and the next look finds them. Each refusal leaves one more found, so it ends.
        attempts = len(records) + 1
        while True:
            try:
                known, ids = self._store_new(records, prepared, vectors)
                break
            except StoredMeanwhileError:
                attempts -= 1
                if attempts == 0:
                    raise
        all_ids = [known.get((q, p.content_hash)) or ids[(q, p.content_hash)] for q, p in prepared]
        return ImportResult(
            ids=all_ids,
            created=len(ids),
            duplicates=len(records) - len(ids),
            redacted=sum(1 for _, p in prepared if p.redacted),
        )

    def _store_new(
        self,
        records: Sequence[MemoryRecord],
        prepared: Sequence[tuple[str, Prepared]],
        vectors: Sequence[Vectors | None],
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """Store the records whose text is not stored in their project yet: ({(project, hash): id} of those
        already stored, of those stored now)."""
        core = self._core
        store, catalog = core.store, core.catalog
        model = core.embedder.model_id
        with core.lock:
            now = core.clock.now()
            known: dict[tuple[str, str], int] = {}
            for project in {project for project, _ in prepared}:
                hashes = [p.content_hash for q, p in prepared if q == project]
                known |= {(project, h): i for h, i in store.ids_by_hash(hashes, project).items()}
            rows: dict[tuple[str, str], StoredMemory] = {}
            for r, (project, p), vector in zip(records, prepared, vectors, strict=True):
                key = (project, p.content_hash)
                if key not in known and key not in rows:
                    rows[key] = _memory_row(r, project, p, vector, model, now)
            ids = dict(zip(rows, store.import_memories(list(rows.values())), strict=True))
            core.feedback.load(
                [replace(use, memory_id=i) for key, i in ids.items() if (use := rows[key].use) is not None],
                keep=True,
            )
            catalog.writes += 1
            if ids:
                core.source.added(list(ids.values()), np.stack([row.embedding for row in rows.values()]))
                for project, _ in ids:
                    catalog.count(project, 1)
                core.source.indexed(store.documents_around(list(ids.values())))
        return known, ids

    def import_links(self, records: Sequence[LinkRecord]) -> ImportResult:
        """Links whose ends are stored (ids already translated); an existing link is left as it is."""
        core = self._core
        core.wait_ready()
        rows = [Link(**r.model_dump(exclude={"type", "line"})) for r in records]
        with core.lock:
            added = core.store.import_links(rows)
            if core.settings.plasticity.enabled:
                core.learning.saved(row for row in rows if (row.source_id, row.target_id) in added)
        return ImportResult(ids=[], created=len(added), duplicates=len(rows) - len(added))


def _in_record(check: Callable[[str], str], value: str, where: str, outcome: str) -> str:
    """``check(value)``, its refusal naming the record and what was stored."""
    try:
        return check(value)
    except InvalidInputError as e:
        raise InvalidInputError(f"{where}{e} {outcome}") from e


def _memory_row(
    r: MemoryRecord, project: str, p: Prepared, vector: Vectors | None, model: str, now: datetime
) -> StoredMemory:
    """A whole memory row from an imported record; times it lacks are now."""
    assert vector is not None
    created = r.created_at or now
    return StoredMemory(
        id=r.id,
        project=project,
        content=p.content,
        content_hash=p.content_hash,
        tags=tuple(p.tags),
        metadata=p.metadata,
        importance=p.importance,
        created_at=created,
        updated_at=r.updated_at or created,
        event_time=r.event_time or created,
        last_accessed_at=r.last_accessed_at or created,
        access_count=r.access_count,
        strength=r.strength,
        tier=r.tier,
        session_id=r.session_id,
        replay_count=r.replay_count,
        last_replayed_at=r.last_replayed_at,
        embedding_model=model,
        embedding=vector,
        use=r.use(model, len(vector)),
    )
