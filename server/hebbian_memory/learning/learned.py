"""What learning adds to a recall's ranking, as pure functions over the candidates' arrays: activation that
learned links passed on from matches that are not relevant, taken back; the use prior (usage.py); and companions,
moved right after the hit they belong to."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import plasticity

__all__ = ["LEADS", "Floats", "unconfident_spread", "use_prior", "with_companions"]

Floats = np.ndarray[Any, np.dtype[np.float32]]
LEADS = 3  # the hits whose companions come along: the ones an assistant reads first


def unconfident_spread(
    ids: Sequence[int],
    reached: Mapping[int, plasticity.Reached],
    relevance: Floats,
    position: Mapping[int, int],
    spread_weight: float,
) -> Floats:
    """What a learned (co-access or explicit) link passed on from a source that is not relevant, to take back in
    proportion: an association follows a confident match, so a weak match on another topic cannot pull its group
    into this recall. Temporal links pass on in full (the next turn of a dialog answers it)."""
    back = np.zeros(len(ids), dtype=np.float32)
    for memory_id, arrived in reached.items():
        j, source = position.get(memory_id), position.get(arrived.source)
        if arrived.kind != "temporal" and j is not None and source is not None:
            back[j] = spread_weight * arrived.activation * (1.0 - relevance[source])
    return back


def use_prior(prior: Floats, relevance: Floats, weight: float) -> Floats:
    """What use reports add: a used memory gains weight x its prior x its own relevance (use makes a memory
    likelier for what it answers, not for every query); one that misled loses weight x its prior whatever it
    matches."""
    return (weight * np.where(prior > 0, prior * relevance, prior)).astype(np.float32)


def with_companions(
    ids: Sequence[int],
    order: list[int],
    relevance: Floats,
    position: Mapping[int, int],
    by_link: set[int],
    neighbours: plasticity.Neighbours,
    rules: PlasticitySettings,
) -> tuple[list[int], frozenset[int]]:
    """Companions right after the hit they belong to, strongest link first, at most ``companions`` in all. What
    belongs together comes together, even when it shares no word with the query; each is as relevant as its lead
    times the link (``relevance`` and ``by_link`` are updated). An explicit link (associate: the user said so)
    makes a companion of any of the first LEADS hits; a link learned from use (at companion_min or more) only of
    the top hit: an inferred association follows only the best match."""
    if not rules.enabled or rules.companions <= 0 or not order:
        return order, frozenset()
    placed: dict[int, list[int]] = {}
    rank = {i: r for r, i in enumerate(order)}
    taken: set[int] = set()
    budget = rules.companions
    for lead in order[:LEADS]:
        if lead in taken:  # already placed as a companion: it brings none of its own
            continue
        taken.add(lead)
        learned = lead == order[0]
        strong = sorted(
            (
                (weight, position[neighbour])
                for neighbour, weight, kind in neighbours(ids[lead])
                if neighbour in position
                and position[neighbour] not in taken
                and rank.get(position[neighbour], len(order)) > rank[lead]  # one ranked above it stays there
                and (kind == "explicit" or (learned and kind == "coaccess" and weight >= rules.companion_min))
            ),
            reverse=True,
        )[:budget]
        for weight, i in strong:
            taken.add(i)
            placed.setdefault(lead, []).append(i)
            if relevance[lead] * weight > relevance[i]:
                relevance[i] = relevance[lead] * weight
                by_link.add(i)
        budget -= len(strong)
    if not placed:
        return order, frozenset()
    chosen = {i for group in placed.values() for i in group}
    out: list[int] = []
    for i in order:
        if i in chosen:
            continue
        out.append(i)
        out.extend(placed.get(i, ()))
    return out[: len(order)], frozenset(chosen)
