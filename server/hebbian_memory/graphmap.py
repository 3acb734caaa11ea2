"""`hebbian-memory map`: a self-contained HTML page of the association graph, made from an export file.

Memories are nodes coloured by tier and sized by strength; links are drawn by current (decayed) weight. The
layout is computed here (a force layout in numpy), so the page only draws, zooms, pans and searches: it needs
no network and no library. Beside the graph: counts per tier and kind, and how an idle link of each tier
fades over the coming weeks under the configured decay.
"""

import html
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hebbian_memory import plasticity, portability
from hebbian_memory.config import PlasticitySettings

PAGE = Path(__file__).with_name("map.html")  # the page; the data goes where it says __DATA__
MAX_NODES = 1500  # beyond this the most connected memories are drawn
LABEL_CHARS = 160
DECAY_DAYS = 60


def graph_data(export: Path, rules: PlasticitySettings, now: datetime) -> dict[str, Any]:
    """Nodes, links, counts and decay curves for the page, from an export file."""
    memories: list[portability.MemoryRecord] = []
    links: list[portability.LinkRecord] = []
    for _done, record in portability.read(export):
        if isinstance(record, portability.MemoryRecord):
            memories.append(record)
        elif isinstance(record, portability.LinkRecord):
            links.append(record)
    degree = Counter([link.source_id for link in links] + [link.target_id for link in links])
    shown = sorted(memories, key=lambda m: (-degree[m.id or 0], -(m.strength), m.id or 0))[:MAX_NODES]
    index = {m.id: i for i, m in enumerate(shown)}
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
    positions = layout(len(shown), [(a, b, w) for a, b, w, _ in edges])
    return {
        "generated": now.isoformat(timespec="seconds"),
        "total_memories": len(memories),
        "nodes": [
            {
                "id": m.id,
                "x": round(float(positions[i, 0]), 2),
                "y": round(float(positions[i, 1]), 2),
                "tier": m.tier,
                "strength": round(m.strength, 3),
                "project": m.project,
                "label": m.content[:LABEL_CHARS],
                "links": degree[m.id or 0],
            }
            for i, m in enumerate(shown)
        ],
        "links": [{"a": a, "b": b, "w": round(w, 4), "tier": link.tier, "kind": link.kind} for a, b, w, link in edges],
        "memories_by_tier": dict(sorted(Counter(m.tier for m in memories).items())),
        "links_by_tier": dict(sorted(Counter(link.tier for link in links).items())),
        "links_by_kind": dict(sorted(Counter(link.kind for link in links).items())),
        "decay": {
            tier: [round(plasticity.decayed(1.0, tier, timedelta(days=day), rules), 4) for day in range(DECAY_DAYS + 1)]
            for tier in (1, 2, 3)
        },
        "floor": rules.floor,
    }


def layout(n: int, edges: list[tuple[int, int, float]], iterations: int = 80, seed: int = 7) -> np.ndarray[Any, Any]:
    """Fruchterman-Reingold in the unit square (scaled to 1000): linked memories pull together, all repel."""
    if n == 0:
        return np.zeros((0, 2))
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2), dtype=np.float32)
    if n == 1:
        return pos * 1000
    k2 = np.float32(1.0 / n)  # k squared, k = 1 / sqrt(n): the ideal distance between nodes
    a = np.asarray([e[0] for e in edges], dtype=np.int64)
    b = np.asarray([e[1] for e in edges], dtype=np.int64)
    w = np.asarray([0.2 + e[2] for e in edges], dtype=np.float32)
    temperature = 0.1
    for _ in range(iterations):
        dx = pos[:, 0, None] - pos[None, :, 0]
        dy = pos[:, 1, None] - pos[None, :, 1]
        factor = k2 / np.maximum(dx * dx + dy * dy, 1e-6)  # repulsion k^2 / d along the unit vector
        push = np.stack([(dx * factor).sum(axis=1), (dy * factor).sum(axis=1)], axis=1)
        if len(edges):
            d = pos[a] - pos[b]
            length = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            pull = d * (length / np.sqrt(k2) * w)[:, None]  # attraction d^2 / k along the unit vector
            np.add.at(push, a, -pull)
            np.add.at(push, b, pull)
        push += (0.5 - pos) * np.float32(0.05 * np.sqrt(n))  # a little gravity keeps separate islands in view
        step = np.linalg.norm(push, axis=1, keepdims=True)
        pos += push / np.maximum(step, 1e-9) * np.minimum(step, temperature)
        temperature *= 0.95
    pos -= pos.min(axis=0)
    return pos / max(float(pos.max()), 1e-9) * 1000


def render(data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # no "</script>" inside the script
    page = PAGE.read_text(encoding="utf-8")
    return page.replace("__DATA__", payload).replace(
        "__TITLE__", html.escape(f"hebbian-memory map, {data['generated']}")
    )
