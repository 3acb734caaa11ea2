"""The recall path: validate, embed the query, let the Ranker order the candidates, keep those relevant enough,
fit them to the token budget and the result size, and note which memories were used together."""

from collections.abc import Sequence
from datetime import datetime

from hebbian_memory import inputs
from hebbian_memory.errors import InvalidInputError, StorageFaultError
from hebbian_memory.learning import plasticity
from hebbian_memory.learning.feedback import Report
from hebbian_memory.models import LinkVia, RecallHit, RecallResult, ScoreParts
from hebbian_memory.retrieval import ranking
from hebbian_memory.retrieval.ranking import Ranker, estimate_tokens
from hebbian_memory.service.core import Core
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
    """recall, over the Ranker (which reads the indexes and the store and writes nothing)."""

    def __init__(self, core: Core, ranker: Ranker) -> None:
        self._core = core
        self._ranker = ranker

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
    ) -> RecallResult:
        """Best memories for ``query`` in ``project`` (None: in every project) whose relevance reaches
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
        within = None if project is None else inputs.project(project)
        index = core.wait_ready()
        query_vector = core.embedder.embed([text])
        learn = core.settings.plasticity.enabled
        with core.lock:
            told = self._learn(report, session_id, project) if learn and report is not None else None
            filters = Filters(wanted_tags, start, end, core.catalog.project_filter(within))
            asked = self._ranker.query(text, query_vector[0])
            ranked = self._ranker.rank(index, asked, top_k, filters, keep_all=budget is not None)
            if ranked is None:
                return RecallResult(hits=[], note=_notes(NOTHING_STORED, told))
            found = ranked.found
            # Companions come with a top hit that is relevant: they are here for its link, not their own match.
            lead = ranked.relevance[ranked.order[0]] >= floor
            order = [i for i in ranked.order if ranked.relevance[i] >= floor or (lead and i in ranked.companions)]
            if not order:
                best = max(float(ranked.relevance[i]) for i in ranked.order)
                return RecallResult(hits=[], note=_notes(nothing_relevant(floor, best), told))
            rows = core.store.get([found.ids[i] for i in order])
            if budget is not None:
                order = ranking.pack(order, [estimate_tokens(rows[found.ids[i]].content) for i in order], budget, top_k)
            shown = ranking.within(order, [len(rows[found.ids[i]].content) for i in order], limits.max_result_chars)
            truncated, order = len(shown) < len(order), shown
            chosen = [found.ids[i] for i in order]
            if learn:
                core.learning.recalled(session_id, chosen, core.clock.now())
                core.feedback.shown(session_id, chosen, query_vector[0])
        hits = [
            RecallHit(
                id=memory_id,
                content=rows[memory_id].content,
                tags=rows[memory_id].tags,
                metadata=rows[memory_id].metadata,
                score=round(float(ranked.fused[i]), 6),
                relevance=round(float(ranked.relevance[i]), 4),
                parts=ScoreParts(
                    dense=round(float(ranked.dense[i]), 6),
                    lexical=round(float(ranked.lexical[i]), 6),
                    cosine=round(float(found.cosine[i]), 6),
                ),
                created_at=rows[memory_id].created_at,
                event_time=rows[memory_id].event_time,
                reason="linked" if ranked.linked(i) else "direct",
                via=_via(ranked.reached.get(memory_id)),
            )
            for i, memory_id in zip(order, chosen, strict=True)
            if memory_id in rows
        ]
        tokens = sum(estimate_tokens(h.content) for h in hits)
        return RecallResult(hits=hits, note=told, tokens=tokens, truncated=truncated)

    def _learn(self, report: Report, session_id: int | None, project: str | None) -> str | None:
        """Learn a use report; what it could not learn goes into the result's note, and the recall goes on."""
        try:
            return self._core.feedback.apply(report, session_id, project)
        except StorageFaultError as e:
            return f"Your report in used/misled was not learned: {e}"


def _notes(*notes: str | None) -> str | None:
    return " ".join(n for n in notes if n) or None


def _via(reached: plasticity.Reached | None) -> LinkVia | None:
    if reached is None:
        return None
    return LinkVia(memory_id=reached.source, kind=reached.kind, weight=round(reached.weight, 6), hops=reached.hops)  # pyright: ignore[reportArgumentType] -- kinds come from the schema
