"""Recall's ranking: candidates from the vector and keyword indexes, each scored by both measures on absolute
scales (cosine; the informative share of the query a memory's keywords match), fused with the boosts that fit
dialog turns, spread along the learned links, the best re-scored by what they match beyond the query's words
they repeat (evidence.py), near-duplicates skipped; then what fits a token budget or the result size limit.
Reads only through a RecallSource (source.py) and writes nothing; many recalls may rank at once."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from hebbian_memory.config import PlasticitySettings, RecallSettings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.learning import learned, plasticity
from hebbian_memory.retrieval import documents, evidence
from hebbian_memory.retrieval.source import Features, Floats, RecallSource
from hebbian_memory.retrieval.text import terms, words
from hebbian_memory.storage import Filters

__all__ = ["Candidates", "Query", "Ranker", "Scored", "estimate_tokens", "pack", "within"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidates:
    ids: list[int]
    vectors: Vectors  # their embeddings, read once from the index
    cosine: Floats
    episode_cosine: Floats
    lexical: Floats
    features: list[Features]

    @staticmethod
    def empty() -> "Candidates":
        nothing = np.zeros(0, np.float32)
        return Candidates([], np.zeros((0, 0), np.float32), nothing, nothing, nothing, [])

    def extend(self, more: "Candidates") -> "Candidates":
        return Candidates(
            self.ids + more.ids,
            np.concatenate([self.vectors, more.vectors]),
            np.concatenate([self.cosine, more.cosine]),
            np.concatenate([self.episode_cosine, more.episode_cosine]),
            np.concatenate([self.lexical, more.lexical]),
            self.features + more.features,
        )


@dataclass(frozen=True, slots=True)
class Query:
    """A query as ranking uses it, worked out once per recall."""

    text: str
    vector: Floats
    words: frozenset[str]  # for the entity boost
    asked: int  # the answer kinds it asks for (documents.TIME, ...), of those switched on
    full_score: float  # the keyword score of a memory holding all its terms (LexicalIndex.full_score)


@dataclass(frozen=True, slots=True)
class Scored:
    """One ranked memory and its scores (each the float32 ranking computed, exactly)."""

    id: int
    score: float  # the fused score the order follows
    relevance: float  # 0-1, comparable across queries and stores
    dense: float  # cosine (a dialog turn's: read in its episode), less the residual correction
    lexical: float  # the informative share of the query its keywords match, 0-1
    cosine: float  # to the whole query
    # A link, not its own match with the query, is why it is here, or where it is (a companion follows its lead).
    linked: bool
    companion: bool  # moved right after a leading hit by an explicit or strong learned link
    reached: plasticity.Reached | None  # how spreading activation reached it, if it did


class Ranker:
    """Ranks memories for a query. It reads only its source (and the use priors), and never changes either."""

    def __init__(
        self,
        recall: RecallSettings,
        rules: PlasticitySettings,
        source: RecallSource,
        priors: Callable[[Sequence[int], Floats], Floats],
        embed: Callable[[Sequence[str]], Vectors],
    ) -> None:
        self._cfg = recall
        self._rules = rules
        self._source = source
        self._priors = priors
        self._embed = embed
        self.kinds_on = documents.kinds_mask(recall.answer_kinds) | documents.QUESTION

    def query(self, text: str, vector: Floats) -> Query:
        asked = documents.asked_kind(text) & self.kinds_on
        return Query(text, vector, frozenset(words(text)), asked, self._source.keyword_scale(text))

    def rank(self, query: Query, top_k: int, filters: Filters, keep_all: bool) -> list[Scored]:
        """The best ``top_k`` candidates (all of them, with ``keep_all``), best first; none when nothing matches."""
        found = self._candidates(query, max(self._cfg.candidates, top_k), filters)
        if not found.ids:
            return []
        dense, lexical, fused = self._fuse(found, query)
        direct = len(found.ids)
        reached: dict[int, plasticity.Reached] = {}
        rules = self._rules
        if rules.enabled and rules.spread_weight > 0 and rules.spread_hops > 0:
            found, dense, lexical, fused, reached = self._spread_activation(found, fused, query, top_k, filters)
        checked = self._best(fused, self._cfg.residual_candidates if self._cfg.residual_share > 0 else 0)
        left = self._residual_cosines(found, checked, query)
        # Only the part of the query its keywords do not match is checked: a memory that holds most of the
        # question's information keeps its cosine; one that shares a lone topic word is judged on the rest.
        correction = (self._cfg.residual_share * (1.0 - lexical) * (found.cosine - left)).astype(np.float32)
        dense, fused = dense - correction, fused - correction
        # Relevance takes the residual whole: a hit is what was asked for when it matches the rest of the
        # question, or holds its information in words; not when it only shares its topic (evidence.py).
        cfg = self._cfg
        turn = self._turns(found)[1]
        support = left + self._keywords(turn, lexical)
        midpoint = cfg.relevance_midpoint + turn * (cfg.turn_relevance_midpoint - cfg.relevance_midpoint)
        relevance = (1.0 / (1.0 + np.exp(-cfg.relevance_slope * (support - midpoint)))).astype(np.float32)
        position = {memory_id: i for i, memory_id in enumerate(found.ids)}
        if rules.enabled:
            fused = fused - learned.unconfident_spread(found.ids, reached, relevance, position, rules.spread_weight)
            if rules.prior_weight > 0:
                fused = fused + learned.use_prior(self._priors(found.ids, query.vector), relevance, rules.prior_weight)
        # What a link brought is as relevant as what it was linked to, times the link's weight, if that is more.
        by_link: set[int] = set()
        for memory_id, arrived in reached.items():
            i, source = position.get(memory_id), position.get(arrived.source)
            if i is not None and source is not None and relevance[source] * arrived.weight > relevance[i]:
                relevance[i] = relevance[source] * arrived.weight
                by_link.add(i)
        # The checked come first: the rest were not corrected, so their scores are not comparable (too high).
        unchecked = np.ones(len(found.ids), dtype=bool)
        unchecked[checked] = False
        ordering = fused - np.float32(1e6) * unchecked if checked else fused
        order = self._diverse_order(found, ordering, len(found.ids) if keep_all else top_k)
        order, companions = learned.with_companions(
            found.ids, order, relevance, position, by_link, self._source.neighbours, rules
        )
        return [
            Scored(
                found.ids[i],
                float(fused[i]),
                float(relevance[i]),
                float(dense[i]),
                float(lexical[i]),
                float(found.cosine[i]),
                i >= direct or i in by_link or i in companions,
                i in companions,
                reached.get(found.ids[i]),
            )
            for i in order
        ]

    @staticmethod
    def _best(scores: Floats, n: int) -> list[int]:
        return np.argsort(-scores, kind="stable")[:n].tolist()

    def _candidates(self, query: Query, n: int, filters: Filters) -> Candidates:
        """The union of dense and lexical candidates, each scored exactly by both measures."""
        source = self._source
        filtered = filters.active
        allowed = source.allowed(filters, self._cfg.exact_filter_limit) if filtered else None
        if allowed is not None:
            # A selective filter: score every allowed memory exactly, so the filter can never hide a match.
            if not allowed:
                return Candidates.empty()
            cosines = source.vectors(allowed) @ query.vector
            best: list[int] = np.argsort(-cosines)[:n].tolist()
            dense_ids = [allowed[i] for i in best]
            lexical_ids = [i for i, _ in source.keyword(query.text, n, only=allowed)]
        elif not filtered:
            dense_ids = source.dense(query.vector, n)
            lexical_ids = [i for i, _ in source.keyword(query.text, n)]
        else:
            dense_ids, lexical_ids = self._widening(query, n, filters)
        ids = list(dict.fromkeys(dense_ids + lexical_ids))
        if not ids:
            return Candidates.empty()
        return self._score(ids, query)

    def _widening(self, query: Query, n: int, filters: Filters) -> tuple[list[int], list[int]]:
        """The best ``n`` dense and keyword candidates that pass a filter too broad to score exactly: the nearest
        ten times ``n`` first, four times as many each round while fewer than ``n`` of them pass and the index has
        more (pgvector's iterative scan, in process), so a filter never cuts the answer short of what matches."""
        source = self._source
        over = n * 10
        while True:
            dense = source.dense(query.vector, over)
            lexical = [i for i, _ in source.keyword(query.text, over)]
            keep = source.matching(list(dict.fromkeys(dense + lexical)), filters)
            dense_ids = [i for i in dense if i in keep][:n]
            lexical_ids = [i for i in lexical if i in keep][:n]
            if len(dense_ids) >= n or len(dense) < over:  # enough, or every memory was looked at
                return dense_ids, lexical_ids
            over *= 4

    def _score(self, ids: list[int], query: Query) -> Candidates:
        """Score memories exactly by both measures."""
        source = self._source
        vectors = source.vectors(ids)
        cosine = (vectors @ query.vector).astype(np.float32)
        bm25 = dict(source.keyword(query.text, len(ids), only=ids))
        lexical = np.asarray([bm25.get(i, 0.0) for i in ids], dtype=np.float32)
        features = source.features(ids)
        episode = self._episode_cosine(features, vectors, cosine, query.vector)
        return Candidates(ids, vectors, cosine, episode, lexical, features)

    def _episode_cosine(self, features: list[Features], vectors: Vectors, cosine: Floats, query: Floats) -> Floats:
        """Cosine of each dialog turn, and of each memory stored right after a question, read in its episode (its
        vector plus a share of the previous memory's), or its own cosine when that is higher: a reply matches
        the question it answers. A note stored after another note is read alone: it is about something else."""
        share = self._cfg.episode_share
        previous = [f.previous for f in features if f.previous is not None]
        if share <= 0 or not previous:
            return cosine
        asked = {
            p for p, f in zip(previous, self._source.features(previous), strict=True) if f.kinds & documents.QUESTION
        }
        present = self._source.with_vectors(previous)
        rows: list[int] = []
        before: list[int] = []  # the previous memory of each of rows
        for j, f in enumerate(features):
            p = f.previous
            if p is not None and p in present and (f.kinds & documents.TURN or p in asked):
                rows.append(j)
                before.append(p)
        if not rows:
            return cosine
        context = vectors[rows] + share * self._source.vectors(before)
        context /= np.maximum(np.linalg.norm(context, axis=1, keepdims=True), 1e-12)
        out = cosine.copy()
        out[rows] = np.maximum(cosine[rows], context @ query)
        return out

    def _turns(self, found: Candidates) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], Floats]:
        kinds = np.fromiter((f.kinds for f in found.features), dtype=np.uint8, count=len(found.ids))
        return kinds, ((kinds & documents.TURN) != 0).astype(np.float32)

    def _keywords(self, turn: Floats, lexical: Floats) -> Floats:
        """The keyword evidence per memory. A dialog turn says little on its own (its cosine is weak evidence,
        its words and its neighbours' strong): its keyword share counts in full. A note's embedding carries its
        meaning: its share counts squared, so keywords add only when they hold most of the query's information
        (a third of it: a ninth of the weight)."""
        cfg = self._cfg
        return np.where(turn > 0, cfg.turn_keyword_weight * lexical, cfg.keyword_weight * lexical**2).astype(np.float32)

    def _fuse(self, found: Candidates, query: Query) -> tuple[Floats, Floats, Floats]:
        """Dense and keyword scores on absolute scales and their weighted sum; on dialog turns plus the entity and
        answer-kind boosts; less the question penalty."""
        cfg = self._cfg
        kinds, turn = self._turns(found)
        dense = found.episode_cosine
        full = max(query.full_score, 1e-9)
        lexical = np.clip(found.lexical / full, 0.0, 1.0).astype(np.float32)
        fused = dense + self._keywords(turn, lexical)
        named = np.asarray([bool(f.entities & query.words) for f in found.features], np.float32)
        fused += turn * cfg.entity_boost * named
        fused += turn * cfg.answer_boost * ((kinds & query.asked) != 0)
        fused -= cfg.question_penalty * ((kinds & documents.QUESTION) != 0)
        return dense, lexical, fused.astype(np.float32)

    def _residual_cosines(self, found: Candidates, checked: list[int], query: Query) -> Floats:
        """Each checked candidate's cosine to the query without the words it shares with it (evidence.py); its
        cosine to the whole query for the rest, and where nothing or everything is shared."""
        left = found.cosine.copy()
        asks = self._residuals(query.text, [found.ids[i] for i in checked])
        if asks:
            texts = list(asks)
            for text, vector in zip(texts, self._embed(texts), strict=True):
                for j in asks[text]:
                    left[checked[j]] = float(found.vectors[checked[j]] @ vector)
        return left

    def _residuals(self, query: str, ids: list[int]) -> dict[str, list[int]]:
        """Each distinct rest of the query (evidence.residual) and the positions in ``ids`` it belongs to."""
        held = self._source.texts(ids)  # its words as the keyword index holds them
        asks: dict[str, list[int]] = {}
        for j, memory_id in enumerate(ids):
            text = held.get(memory_id)
            if text is None:
                continue
            rest = evidence.residual(query, frozenset(terms(text)))
            if rest is not None:
                asks.setdefault(rest, []).append(j)
        return asks

    def _spread_activation(
        self, found: Candidates, fused: Floats, query: Query, top_k: int, filters: Filters
    ) -> tuple[Candidates, Floats, Floats, Floats, dict[int, plasticity.Reached]]:
        """Spreading activation: the best candidates pass their score along their links (x weight x hop factor
        per hop); memories reached join the candidates, and what arrives is added to their scores. Over
        temporal links this brings the turn after the best match (an answer often follows what matches the
        question); over co-access links, what was used together with it."""
        rules = self._rules
        n_seeds = max(rules.seeds, 2 * top_k)
        inside = None if filters.project is None else self._inside(Filters(project=filters.project))

        def spread(scores: Floats) -> dict[int, plasticity.Reached]:
            best: list[int] = np.argsort(-scores, kind="stable")[:n_seeds].tolist()
            seeds = {found.ids[i]: float(scores[i]) for i in best}
            return plasticity.spread(seeds, self._source.neighbours, rules.spread_hops, rules.hop_factor, inside)

        known = set(found.ids)
        extra = [memory_id for memory_id in spread(fused) if memory_id not in known]
        if extra and filters.active:
            allowed = self._source.matching(extra, filters)
            extra = [i for i in extra if i in allowed]
        if extra:  # not a memory another server stored that a link reaches before this one caught up on its vector
            vectored = self._source.with_vectors(extra)
            extra = [i for i in extra if i in vectored]
        if extra:
            found = found.extend(self._score(extra, query))
        dense, lexical, fused = self._fuse(found, query)
        reached = spread(fused)
        bonus = np.asarray([reached[i].activation if i in reached else 0.0 for i in found.ids], dtype=np.float32)
        return found, dense, lexical, fused + rules.spread_weight * bonus, reached

    def _inside(self, project: Filters) -> Callable[[list[int]], set[int]]:
        """Those of the ids it is given that are in ``project``, each asked of the store once per recall. Activation
        stays in the project: a path through another project's memory would let that memory sway this ranking."""
        known: dict[int, bool] = {}

        def inside(ids: list[int]) -> set[int]:
            ask = [i for i in ids if i not in known]
            if ask:
                found = self._source.matching(ask, project)
                known.update((i, i in found) for i in ask)
            return {i for i in ids if known[i]}

        return inside

    def _diverse_order(self, found: Candidates, fused: Floats, top_k: int) -> list[int]:
        """The best ``top_k`` candidates, skipping near-duplicates of a better one (cosine at or above
        ``recall.duplicate_cosine``) so that copies do not crowd out other evidence."""
        threshold = self._cfg.duplicate_cosine
        ranked: list[int] = np.argsort(-fused, kind="stable").tolist()
        if threshold >= 1.0 or len(ranked) <= 1:
            return ranked[:top_k]
        order: list[int] = []
        for i in ranked:
            if order and float(np.max(found.vectors[order] @ found.vectors[i])) >= threshold:
                continue
            order.append(i)
            if len(order) == top_k:
                break
        return order


def estimate_tokens(text: str) -> int:
    """Tokens an LLM will spend on ``text``, roughly (about four characters per token in English)."""
    return max(1, -(-len(text) // 4))


def within(order: list[T], sizes: list[int], limit: int) -> list[T]:
    """The leading hits whose content fits in ``limit`` characters together."""
    total = 0
    for n, size in enumerate(sizes):
        total += size
        if total > limit:
            return order[:n]
    return order


def pack(order: list[T], costs: list[int], budget: int, limit: int) -> list[T]:
    """The best-ranked hits that fit in ``budget`` tokens together, at most ``limit`` of them; a hit too
    large for what is left is skipped in favour of smaller ones further down."""
    packed: list[T] = []
    left = budget
    for i, cost in zip(order, costs, strict=True):
        if cost <= left:
            packed.append(i)
            left -= cost
            if len(packed) == limit:
                break
    return packed
