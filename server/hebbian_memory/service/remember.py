"""The remember path: validate and redact, find what is stored already, embed the rest outside the lock, then
store, index each new memory in its session's episode and reinforce the memories stated again."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from hebbian_memory import inputs
from hebbian_memory.config import LimitSettings
from hebbian_memory.errors import InvalidInputError, StorageFaultError, StoredMeanwhileError
from hebbian_memory.learning.feedback import Report
from hebbian_memory.models import MemoryInput, RememberResult
from hebbian_memory.redaction import Redactor
from hebbian_memory.service.core import Core
from hebbian_memory.storage import Chain, Filters, NewMemory

__all__ = ["Prepared", "Rememberer", "prepare"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated memory ready to store."""

    content: str
    content_hash: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    importance: float
    event_time: datetime | None
    redacted: tuple[str, ...] = ()


def prepare(item: MemoryInput, limits: LimitSettings, redactor: Redactor, where: str, outcome: str) -> Prepared:
    """Validate, then redact secrets (before the text is hashed, stored or embedded). A refusal starts with
    ``where`` and ends with ``outcome`` (what the call stored: nothing)."""
    try:
        text = inputs.text(item.content, "content", limits.max_content_chars)
        metadata = inputs.metadata(item.metadata, limits)
        clean = redactor.text(text)
        clean_metadata, metadata_kinds = redactor.json(metadata)
        tag_kinds: list[str] = []

        def clean_tag(tag: str) -> str:
            redacted = redactor.text(tag)
            tag_kinds.extend(redacted.kinds)
            return redacted.text

        tags = inputs.tags(item.tags, limits, clean_tag)
        return Prepared(
            content=clean.text,
            content_hash=inputs.content_hash(clean.text),
            tags=tags,
            metadata=clean_metadata,
            importance=inputs.unit_interval(item.importance, "importance"),
            event_time=inputs.when(item.event_time, "event_time"),
            redacted=tuple(dict.fromkeys((*clean.kinds, *tag_kinds, *metadata_kinds))),
        )
    except InvalidInputError as e:
        raise InvalidInputError(f"{where}{e} {outcome}") from e


def _partly_done(created: Mapping[str, int], reinforced: Sequence[int]) -> str:
    """What a remember the disk cut short after its insert did store (the insert is one transaction)."""
    stored = f"new memories were stored, ids {sorted(created.values())}" if created else "no new memory was stored"
    again = f", memories {reinforced} were reinforced" if reinforced else ""
    return (
        f"Part of this call was done: {stored}{again}; reinforcing the memories already stored stopped there. "
        "Calling again with the same items is safe: stored ones return their id."
    )


class Rememberer:
    """remember and remember_many (one code path: remember is a batch of one)."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def remember_many(
        self,
        items: Sequence[MemoryInput],
        session_id: int | None,
        project: str,
        validate_only: bool,
        report: Report | None = None,
    ) -> list[RememberResult]:
        """Store many memories at once (batched embedding); all are validated first, so one bad item stores none.
        Identical text already stored in the same project is reinforced instead of stored again. With
        ``validate_only``, nothing is stored: the items are only checked (a caller storing in parts)."""
        core = self._core
        settings, store, embedder, catalog = core.settings, core.store, core.embedder, core.catalog
        limits = settings.limits
        project = inputs.project(project)
        if not 1 <= len(items) <= limits.max_batch:
            raise InvalidInputError(f"Send between 1 and {limits.max_batch} memories per call, got {len(items)}.")
        prepared = [
            prepare(item, limits, core.redactor, f"memory {i + 1}: " if len(items) > 1 else "", "Nothing was stored.")
            for i, item in enumerate(items)
        ]
        if validate_only:
            return []
        core.wait_ready()
        self._check_used(report, project)

        writes_seen = catalog.writes
        stored = store.ids_by_hash([p.content_hash for p in prepared], project)
        fresh = list({p.content_hash: p for p in prepared if p.content_hash not in stored}.values())
        # Embedding runs outside the lock: it is the slow part, and concurrent calls may overlap in it.
        vectors = dict(zip((p.content_hash for p in fresh), embedder.embed([p.content for p in fresh]), strict=True))
        with core.lock:
            now = core.clock.now()
            # Look again only if another call stored or forgot memories while we were embedding.
            known = (
                stored
                if catalog.writes == writes_seen
                else store.ids_by_hash([p.content_hash for p in prepared], project)
            )
            new: dict[str, Prepared] = {}
            for p in prepared:
                if p.content_hash not in known:
                    new.setdefault(p.content_hash, p)
            for digest in new.keys() - vectors.keys():  # a duplicate was forgotten meanwhile
                vectors[digest] = embedder.embed([new[digest].content])[0]
            tail = catalog.tail(session_id)
            learn = settings.plasticity.enabled and session_id is not None
            chain = Chain(tail[0] if tail else None, settings.plasticity.temporal_weight) if learn else None
            rows = [
                NewMemory(
                    content=p.content,
                    content_hash=p.content_hash,
                    tags=p.tags,
                    metadata=p.metadata,
                    importance=p.importance,
                    event_time=p.event_time or now,
                    embedding=vectors[p.content_hash],
                    embedding_model=embedder.model_id,
                    session_id=session_id,
                    project=project,
                )
                for p in new.values()
            ]
            try:
                ids = store.insert(rows, now, chain)
            except StoredMeanwhileError:  # another server sharing the database stored one of these since we looked
                known = store.ids_by_hash([p.content_hash for p in prepared], project)
                new = {digest: p for digest, p in new.items() if digest not in known}
                rows = [r for r in rows if r.content_hash not in known]
                ids = store.insert(rows, now, chain)
            catalog.writes += 1
            if chain is not None and ids:
                core.learning.temporal([*([chain.after] if chain.after is not None else []), *ids], now)
            catalog.count(project, len(rows))
            if rows:
                core.source.added(ids, np.stack([r.embedding for r in rows]))
            core.source.continued(session_id, ids, rows)
            created = dict(zip(new.keys(), ids, strict=True))
            results = self._results(prepared, known, created, session_id, now)
            self._learn_use(report, session_id, project, results)
            return results

    def _learn_use(
        self, report: Report | None, session_id: int | None, project: str, results: list[RememberResult]
    ) -> None:
        """What the new memories were written from: used, and linked to them."""
        if report is None or not self._core.settings.plasticity.enabled:
            return
        try:
            self._core.feedback.apply(report, session_id, project, made=[r.id for r in results])
        except StorageFaultError as e:
            stored = sorted({r.id for r in results})
            raise e.with_outcome(
                f"The memories are stored (ids {stored}); only the use report in used was not learned. "
                "Do not send them again."
            ) from e

    def _check_used(self, report: Report | None, project: str) -> None:
        if report is None:
            return
        unknown = sorted(set(report.used) - self._core.store.matching(report.used, Filters(project=project)))
        if unknown:
            raise InvalidInputError(
                f"used names ids {unknown[:5]} that are not stored in this project. Send in used only ids of "
                "memories recall returned here (or none). Nothing was stored."
            )

    def _results(
        self,
        prepared: Sequence[Prepared],
        known: Mapping[str, int],
        created: Mapping[str, int],
        session_id: int | None,
        now: datetime,
    ) -> list[RememberResult]:
        """One result per item; items already stored (or repeated in the batch) reinforce their memory."""
        core = self._core
        results: list[RememberResult] = []
        reinforced: list[int] = []
        answered: set[int] = set()
        for p in prepared:
            memory_id = known.get(p.content_hash) or created[p.content_hash]
            first = p.content_hash in created and memory_id not in answered
            answered.add(memory_id)
            results.append(RememberResult(id=memory_id, created=first, redacted=list(p.redacted)))
            if not first:
                try:
                    core.store.reinforce(memory_id, p.tags, p.importance, session_id, now)
                except StorageFaultError as e:
                    raise e.with_outcome(_partly_done(created, reinforced)) from e
                reinforced.append(memory_id)
        if reinforced and core.settings.plasticity.enabled:  # stating a known fact again is using it
            core.learn(core.learning.used(session_id, reinforced, None, now), now)
        return results
