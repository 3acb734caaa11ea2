"""forget: delete memories from the database, both indexes and the link graph, then rewrite the database file
so their text is gone from disk too (the purge)."""

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from hebbian_memory import inputs
from hebbian_memory.core import Core
from hebbian_memory.errors import InvalidInputError, MemoryNotFoundError
from hebbian_memory.models import ForgetResult

log = logging.getLogger(__name__)


class Forgetter:
    """forget and the purge that follows it."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def forget(
        self,
        ids: Sequence[int] | None,
        tags: Sequence[str] | None,
        before: str | datetime | None,
        project: str | None,
    ) -> ForgetResult:
        """Delete every memory matching all given criteria, from the database and both indexes. Ids name
        memories in any project; tags and before select only within ``project`` (None: in every project)."""
        core = self._core
        store, catalog = core.store, core.catalog
        limits = core.settings.limits
        id_list = inputs.ids(ids, "ids", limits.max_ids) if ids else None
        tag_list = inputs.tags(tags, limits)
        cutoff = inputs.when(before, "before")
        within = None if project is None or id_list is not None else inputs.project(project)
        if id_list is None and not tag_list and cutoff is None:
            raise InvalidInputError(
                "Say what to forget: give ids, tags (memories carrying all of them) or before (an ISO date); "
                "when several are given, only memories matching all of them are forgotten."
            )
        index = core.wait_ready()
        with core.lock:
            if id_list is not None:
                missing = store.missing(id_list)
                if missing:
                    raise MemoryNotFoundError(missing)
            doomed = store.select_for_forget(id_list, tag_list, cutoff, within)
            episodes = store.sessions_of(doomed)
            purge = core.settings.privacy.purge_after_forget and bool(doomed)
            store.delete(doomed, purge_due=purge)
            catalog.writes += 1
            index.remove(doomed)
            if doomed:
                catalog.recount(store.project_counts())
            core.learning.forget(doomed)
            catalog.forget(doomed)
            # Neighbours held the forgotten text as context: index their episodes again without it.
            survivors = store.documents(sorted(episodes)) if episodes else []
            catalog.index_documents(survivors)
            if doomed:
                index.save()  # the file on disk must not keep a forgotten memory's vector
            if purge:
                self.purge()
        return ForgetResult(forgotten=len(doomed), ids=doomed[:1000])

    def purge(self) -> None:
        started = time.perf_counter()
        before, after = self._core.store.purge()
        log.info(
            "database rewritten without forgotten text: %d -> %d bytes in %.2f s",
            before,
            after,
            time.perf_counter() - started,
        )
