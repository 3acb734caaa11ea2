"""The recall path: validate, embed the query, let the Ranker order the candidates, keep those relevant enough,
fit them to the token budget and the result size, and note which memories were used together."""

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from hebbian_memory import inputs
from hebbian_memory.errors import InvalidInputError, StorageFaultError
from hebbian_memory.learning import plasticity
from hebbian_memory.learning.feedback import Report
from hebbian_memory.models import LinkVia, RecallHit, RecallResult, ScoreParts
from hebbian_memory.retrieval import ranking
from hebbian_memory.retrieval.ranking import Ranker, estimate_tokens
from hebbian_memory.service.core import Core
from hebbian_memory.service.scope import ProjectScope
from hebbian_memory.storage import Filters

__all__ = ["MAX_TOKEN_BUDGET", "NOTHING_STORED", "Recaller", "nothing_relevant"]

MAX_TOKEN_BUDGET = 1_000_000
NOTHING_STORED = "Nothing found. No stored memory matches these words and filters."


def nothing_relevant(floor: float, best: float) -> str:
    """The note of a recall whose every match fell below the relevance threshold."""
    return (
        f"No relevant memory: the best match's relevance is {best:.2f}, below min_relevance {floor:.2f}. Treat "
        "this as not remembered; recall with min_relevance 0 to see the weak matches anyway."
    )


class Recaller:
    """recall, over the Ranker (which reads its source and writes nothing)."""

    def __init__(self, core: Core, ranker: Ranker) -> None:
        self._core = core
        self._ranker = ranker
        # Recalls note what they returned (Learning.recalled, Feedback.shown) while other recalls rank: that state
        # is no part of what ranking reads, but two recalls noting at once would race on it.
        self._noting = threading.Lock()

    def recall(
        self,
        query: str,
        k: int | None,
        tags: Sequence[str] | None,
        since: str | datetime | None,
        until: str | datetime | None,
        token_budget: int | None,
        project: str | None,
        session_id: int | None,
        min_relevance: float | None,
        report: Report | None = None,
        scope: ProjectScope | None = None,
    ) -> RecallResult:
        """Best memories for ``query`` in ``project`` (None: in every project ``scope`` allows) whose relevance reaches
        ``min_relevance`` (default: recall.min_relevance). ``report``: what the client says of earlier hits, learned
        before this recall ranks (so it already counts here)."""
        core = self._core
        limits, cfg = core.settings.limits, core.settings.recall
        text = inputs.text(query, "query", limits.max_query_chars)
        top_k = inputs.count(cfg.default_k if k is None else k, "k", limits.max_k)
        budget = None if token_budget is None else inputs.count(token_budget, "token_budget", MAX_TOKEN_BUDGET)
        floor = cfg.min_relevance if min_relevance is None else inputs.unit_interval(min_relevance, "min_relevance")
        wanted_tags = inputs.tags(tags, limits)
        start, end = inputs.when(since, "since"), inputs.when(until, "until")
        if start and end and start > end:
            raise InvalidInputError("since is after until, so nothing can match. Swap them or widen the range.")
        within: list[str | None] = [None if project is None else inputs.project(project)]
        if scope is not None:
            within = [*scope.within(project)]
        core.wait_ready()
        core.catch_up()  # a write acknowledged by another server before this recall is seen by it
        query_vector = core.embedder.embed([text])
        learn = core.settings.plasticity.enabled
        told = None
        if learn and report is not None:
            with core.lock:  # a write
                told = self._learn(report, session_id, project, scope)
        # Ranking and the row fetch only read: recalls share the lock, and no write changes what they read.
        with core.lock.shared():
            asked = self._ranker.query(text, query_vector[0])
            ranked = self._rank(asked, top_k, Filters(wanted_tags, start, end), within, budget is not None)
            if not ranked:
                return RecallResult(hits=[], note=_notes(NOTHING_STORED, told))
            # Ranking computes relevance in float32, and the floor was always compared at that precision.
            least = float(np.float32(floor))
            # Companions come with a top hit that is relevant: they are here for its link, not their own match.
            lead = ranked[0].relevance >= least
            kept = [hit for hit in ranked if hit.relevance >= least or (lead and hit.companion)]
            if not kept:
                best = max(hit.relevance for hit in ranked)
                return RecallResult(hits=[], note=_notes(nothing_relevant(floor, best), told))
            rows = core.store.get([hit.id for hit in kept])
            if budget is not None:
                kept = ranking.pack(kept, [estimate_tokens(rows[hit.id].content) for hit in kept], budget, top_k)
            shown = ranking.within(kept, [len(rows[hit.id].content) for hit in kept], limits.max_result_chars)
            truncated, kept = len(shown) < len(kept), shown
            chosen = [hit.id for hit in kept]
            if learn:
                with self._noting:  # recalls note beside one another; writes, which also change it, are kept out
                    core.learning.recalled(session_id, chosen, core.clock.now())
                    core.feedback.shown(session_id, chosen, query_vector[0])
        hits = [
            RecallHit(
                id=hit.id,
                content=rows[hit.id].content,
                tags=rows[hit.id].tags,
                metadata=rows[hit.id].metadata,
                score=round(hit.score, 6),
                relevance=round(hit.relevance, 4),
                parts=ScoreParts(dense=round(hit.dense, 6), lexical=round(hit.lexical, 6), cosine=round(hit.cosine, 6)),
                created_at=rows[hit.id].created_at,
                event_time=rows[hit.id].event_time,
                reason="linked" if hit.linked else "direct",
                via=_via(hit.reached),  # within the project: activation never leaves it (Ranker._inside)
            )
            for hit in kept
            if hit.id in rows
        ]
        tokens = sum(estimate_tokens(h.content) for h in hits)
        return RecallResult(hits=hits, note=told, tokens=tokens, truncated=truncated)

    def _rank(
        self, query: ranking.Query, top_k: int, filters: Filters, within: list[str | None], keep_all: bool
    ) -> list[ranking.Scored]:
        """The ranked candidates in ``within`` (None: every project). Several projects (a token's all_projects)
        are ranked one by one, each filtered as a single one is, and merged by relevance (comparable across
        recalls), so no other project's memory can come in, not even over a link."""
        found: list[ranking.Scored] = []
        for project in within:
            scoped = replace(filters, project=self._core.catalog.project_filter(project))
            found += self._ranker.rank(query, top_k, scoped, keep_all)
        if len(within) == 1:
            return found
        found.sort(key=lambda hit: -hit.relevance)
        return found if keep_all else found[:top_k]

    def _learn(
        self, report: Report, session_id: int | None, project: str | None, scope: ProjectScope | None
    ) -> str | None:
        """Learn a use report; what it could not learn goes into the result's note, and the recall goes on.
        Under ``scope``, ids of other projects are left out first, and reported as ids not stored here."""
        foreign: list[int] = []
        if scope is not None and project is None:
            outside = scope.foreign(self._core.store, [*report.used, *report.misled])
            foreign = sorted(outside)
            report = Report(
                [m for m in report.used if m not in outside], [m for m in report.misled if m not in outside]
            )
        try:
            told = self._core.feedback.apply(report, session_id, project) if report.used or report.misled else None
        except StorageFaultError as e:
            return f"Your report in used/misled was not learned: {e}"
        if not foreign:
            return told
        return _notes(
            told,
            f"Ids {foreign[:10]} in used/misled are not stored in this project (forgotten, or never returned here); "
            "they were ignored. The rest of the report was learned.",
        )


def _notes(*notes: str | None) -> str | None:
    return " ".join(n for n in notes if n) or None


def _via(reached: plasticity.Reached | None) -> LinkVia | None:
    if reached is None:
        return None
    return LinkVia(memory_id=reached.source, kind=reached.kind, weight=round(reached.weight, 6), hops=reached.hops)  # pyright: ignore[reportArgumentType] -- kinds come from the schema
