"""`hebbian-memory map`: a self-contained HTML page of the association graph, made from an export file.

Memories are nodes coloured by tier and sized by strength; links are drawn by current (decayed) weight. Linked
memories are drawn as clusters (their connected components), biggest first; memories without a link go on a
strip below them along the time they were made (see `maplayout`). The layout is computed here, so the page only
draws, zooms, pans and searches: it needs no network and no library. Beside the graph: counts per tier and
kind, and how an idle link of each tier fades over the coming weeks under the configured decay.
"""

import html
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hebbian_memory import files
from hebbian_memory.cli import maplayout
from hebbian_memory.config import PlasticitySettings
from hebbian_memory.learning import plasticity
from hebbian_memory.service import portability

__all__ = [
    "DECAY_DAYS",
    "LABEL_CHARS",
    "MAX_LINKED",
    "MAX_UNLINKED",
    "PAGE",
    "Link",
    "Memory",
    "graph_data",
    "render",
    "write",
]

PAGE = Path(__file__).with_name("map.html")  # the page; the data goes where it says __DATA__
MAX_LINKED = 1500  # linked memories drawn (whole clusters, biggest first): a cluster's layout is quadratic in its size
MAX_UNLINKED = 3500  # unlinked memories drawn on the strip; beyond this an even sample over time
LABEL_CHARS = 160
DECAY_DAYS = 60

Memory = portability.MemoryRecord
Link = portability.LinkRecord


def graph_data(
    export: Path,
    rules: PlasticitySettings,
    now: datetime,
    max_linked: int = MAX_LINKED,
    max_unlinked: int = MAX_UNLINKED,
) -> dict[str, Any]:
    """Nodes, links, clusters, the time strip, counts and decay curves for the page, from an export file."""
    memories, links = _read(export)
    degree = Counter([link.source_id for link in links] + [link.target_id for link in links])
    linked = _choose_linked([m for m in memories if degree[m.id or 0]], links, degree, max_linked)
    unlinked = [m for m in memories if not degree[m.id or 0]]
    index = {m.id: i for i, m in enumerate(linked)}
    edges = [
        (
            index[link.source_id],
            index[link.target_id],
            plasticity.decayed(link.weight, link.tier, now - link.updated_at, rules),
            link,
        )
        for link in links
        if link.source_id in index and link.target_id in index
    ]
    positions, groups, boxes, width, height = maplayout.clusters(len(linked), [(a, b, w) for a, b, w, _ in edges])
    cluster_of = {i: g for g, members in enumerate(groups) for i in members}
    width = max(width, maplayout.MIN_WIDTH)
    top = height + maplayout.STRIP_GAP if linked else 0.0
    drawn = _sample_over_time(unlinked, max_unlinked, now)
    spots, strip_height, ticks = maplayout.strip(
        np.asarray([_made(m, now).timestamp() for m in drawn]), [m.tier for m in drawn], top, width
    )
    nodes = [_node(m, positions[i], cluster_of[i], degree, now) for i, m in enumerate(linked)]
    nodes += [_node(m, spots[i], None, degree, now) for i, m in enumerate(drawn)]
    return {
        "generated": now.isoformat(timespec="seconds"),
        "total_memories": len(memories),
        "linked_memories": len(memories) - len(unlinked),
        "nodes": nodes,
        "links": [{"a": a, "b": b, "w": round(w, 4), "tier": link.tier, "kind": link.kind} for a, b, w, link in edges],
        "clusters": [
            {"x": round(box.x, 2), "y": round(box.y, 2), "side": round(box.side, 2), "memories": len(members)}
            for box, members in zip(boxes, groups, strict=True)
        ],
        "strip": {
            "y": round(top, 2),
            "height": round(strip_height, 2),
            "memories": len(unlinked),
            "shown": len(drawn),
            "ticks": [
                {"x": round(x, 2), "date": datetime.fromtimestamp(t, now.tzinfo).date().isoformat()} for x, t in ticks
            ],
        }
        if unlinked
        else None,
        "width": round(width, 2),
        "height": round(top + strip_height if unlinked else height, 2),
        "memories_by_tier": dict(sorted(Counter(m.tier for m in memories).items())),
        "links_by_tier": dict(sorted(Counter(link.tier for link in links).items())),
        "links_by_kind": dict(sorted(Counter(link.kind for link in links).items())),
        "decay": {
            tier: [round(plasticity.decayed(1.0, tier, timedelta(days=day), rules), 4) for day in range(DECAY_DAYS + 1)]
            for tier in (1, 2, 3)
        },
        "floor": rules.floor,
    }


def _read(export: Path) -> tuple[list[Memory], list[Link]]:
    memories: list[Memory] = []
    links: list[Link] = []
    for _done, record in portability.read(export):
        if isinstance(record, Memory):
            memories.append(record)
        elif isinstance(record, Link):
            links.append(record)
    return memories, links


def _node(
    m: Memory, xy: np.ndarray[Any, Any], cluster: int | None, degree: Counter[int], now: datetime
) -> dict[str, Any]:
    return {
        "id": m.id,
        "x": round(float(xy[0]), 2),
        "y": round(float(xy[1]), 2),
        "tier": m.tier,
        "strength": round(m.strength, 3),
        "project": m.project,
        "label": m.content[:LABEL_CHARS],
        "links": degree[m.id or 0],
        "made": _made(m, now).date().isoformat(),
        "cluster": cluster,  # None: on the time strip
    }


def _choose_linked(linked: list[Memory], links: list[Link], degree: Counter[int], limit: int) -> list[Memory]:
    """Whole clusters, biggest first, while they fit in ``limit``; of a first cluster bigger than that, its most
    connected memories."""
    index = {m.id: i for i, m in enumerate(linked)}
    pairs = [
        (index[link.source_id], index[link.target_id])
        for link in links
        if {link.source_id, link.target_id} <= index.keys()
    ]
    chosen: list[Memory] = []
    for group in maplayout.components(len(linked), pairs):
        if len(chosen) + len(group) <= limit:
            chosen += [linked[i] for i in group]
        elif not chosen:
            members = sorted((linked[i] for i in group), key=lambda m: (-degree[m.id or 0], -m.strength, m.id or 0))
            chosen = members[:limit]
    return chosen


def _made(memory: Memory, now: datetime) -> datetime:
    return memory.created_at or now  # a hand-written export may leave it out: it is made when imported


def _sample_over_time(memories: list[Memory], limit: int, now: datetime) -> list[Memory]:
    """All of ``memories`` in time order, or ``limit`` of them evenly spread over that order."""
    ordered = sorted(memories, key=lambda m: (_made(m, now), m.id or 0))
    if len(ordered) <= limit:
        return ordered
    return [ordered[int(i)] for i in np.unique(np.linspace(0, len(ordered) - 1, limit).round())]


def render(data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # no "</script>" inside the script
    page = PAGE.read_text(encoding="utf-8")
    return page.replace("__DATA__", payload).replace(
        "__TITLE__", html.escape(f"hebbian-memory map, {data['generated']}")
    )


def write(path: Path, data: dict[str, Any]) -> None:
    """The page at ``path``: owner-only like an export, since it holds the text of every memory drawn."""
    files.write_private(path, render(data))
