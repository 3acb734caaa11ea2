"""forget: delete memories from the database, both indexes and the link graph, then rewrite the database file
so their text is gone from disk too (the purge).

The delete is one transaction: if the disk refuses it, nothing is forgotten and the call fails. What follows
it (checkpoint, saving the vector index, the purge) may be refused too, after the delete has committed: the
call then succeeds and its note says what is pending; that work is retried (``finish``) before the next write."""

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from hebbian_memory import inputs
from hebbian_memory.errors import InvalidInputError, MemoryNotFoundError, StorageFaultError
from hebbian_memory.models import ForgetResult
from hebbian_memory.retrieval.vectors import VectorIndex
from hebbian_memory.service.core import Core
from hebbian_memory.service.scope import ProjectScope
from hebbian_memory.storage import PURGE_DUE

__all__ = ["NOTHING_FORGOTTEN", "Forgetter"]

log = logging.getLogger(__name__)

NOTHING_FORGOTTEN = "Nothing was forgotten."


class Forgetter:
    """forget and the purge that follows it."""

    def __init__(self, core: Core) -> None:
        self._core = core
        # The fault that cut the last forget's clean-up short (checkpoint, purge); retried by ``finish``.
        self.unfinished: StorageFaultError | None = None

    def forget(
        self,
        ids: Sequence[int] | None,
        tags: Sequence[str] | None,
        before: str | datetime | None,
        project: str | None,
        scope: ProjectScope | None = None,
    ) -> ForgetResult:
        """Delete every memory matching all given criteria, from the database and both indexes. Ids name
        memories in any project ``scope`` allows (others act as unknown); tags and before select only within
        ``project`` (None: in every project it allows)."""
        core = self._core
        store, catalog = core.store, core.catalog
        limits = core.settings.limits
        id_list = inputs.ids(ids, "ids", limits.max_ids) if ids else None
        tag_list = inputs.tags(tags, limits)
        cutoff = inputs.when(before, "before")
        within = None if project is None or id_list is not None else inputs.project(project)
        # Under a scope, tags and before select in each allowed project the call names; ids are checked below.
        allowed = scope.within(project) if scope is not None else ()
        selections: list[str | None] = [within] if scope is None or id_list is not None else [*allowed]
        if id_list is None and not tag_list and cutoff is None:
            raise InvalidInputError(
                "Say what to forget: give ids, tags (memories carrying all of them) or before (an ISO date); "
                "when several are given, only memories matching all of them are forgotten."
            )
        index = core.wait_ready()
        with core.lock:
            if id_list is not None:
                missing = store.missing(id_list)
                if scope is not None:  # another project's memory acts as one not stored
                    missing |= scope.foreign(store, id_list)
                if missing:
                    raise MemoryNotFoundError(missing)
            doomed = sorted({m for p in selections for m in store.select_for_forget(id_list, tag_list, cutoff, p)})
            episodes = store.sessions_of(doomed)
            purge = core.settings.privacy.purge_after_forget and bool(doomed)
            try:
                store.delete(doomed, purge_due=purge)
            except StorageFaultError as e:
                raise e.with_outcome(NOTHING_FORGOTTEN) from e
            catalog.writes += 1
            core.source.removed(doomed)  # the vector index, the keyword index and the maps
            if doomed:
                catalog.recount(store.project_counts())
            core.learning.forget(doomed)
            core.feedback.forget(doomed)
            # Neighbours held the forgotten text as context: index their episodes again without it.
            survivors = store.documents(sorted(episodes)) if episodes else []
            core.source.indexed(survivors)
            note = self._clean_up(index, purge) if doomed else None
        return ForgetResult(forgotten=len(doomed), ids=doomed[:1000], note=note)

    def _clean_up(self, index: VectorIndex, purge: bool) -> str | None:
        """Checkpoint, save the vector index (its file must not keep a forgotten memory's vector), purge. The
        delete has committed: a disk refusing these makes a note of what is pending, not a failed call."""
        pending: list[str] = []
        try:
            self._core.store.checkpoint()
            if purge:
                self.purge()
        except StorageFaultError as e:
            self.unfinished = e
            pending.append("the database file still holds their text (its rewrite is pending)")
        try:
            index.save()
        except StorageFaultError as e:
            self.unfinished = self.unfinished or e
            pending.append("the vector index file still holds their vectors (its save is pending)")
        if self.unfinished is None:
            return None
        return (
            f"Forgotten: they are gone from the database and from recall. But {' and '.join(pending)}, because "
            f"{self.unfinished.problem[0].lower()}{self.unfinished.problem[1:]} This is retried by itself before "
            f"the next write; meanwhile: {self.unfinished.advice}"
        )

    def finish(self) -> None:
        """Finish what a disk fault left of a forget (checkpoint, purge); raises the fault if it persists."""
        if self.unfinished is None:
            return
        with self._core.lock:
            self._core.store.checkpoint()
            if self._core.store.get_meta(PURGE_DUE):
                self.purge()
        self.unfinished = None

    def purge(self) -> None:
        started = time.perf_counter()
        before, after = self._core.store.purge()
        log.info(
            "database rewritten without forgotten text: %d -> %d bytes in %.2f s",
            before,
            after,
            time.perf_counter() - started,
        )
