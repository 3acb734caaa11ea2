"""Where the map draws each memory: linked memories as clusters, biggest first; unlinked ones on a time strip.

One force layout over a whole store is a featureless disc when most memories have no link, so the force layout
runs only within each connected component of the link graph (components of a similar size batched in one numpy
run), each component gets its own square, its side growing with the square root of its size, and the squares are
packed without overlap, biggest first. Memories without a link go on a strip below: x is the date each was made,
and a column's memories stack downwards (by tier, then date), so the strip reads as a histogram over time.
Pure numpy; coordinates are page units (a node is 14-32 across).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ALONE",
    "ASPECT",
    "BATCH_CELLS",
    "DOT",
    "GAP",
    "MIN_WIDTH",
    "SPACING",
    "STRIP_GAP",
    "STRIP_MAX_HEIGHT",
    "Array",
    "Box",
    "clusters",
    "components",
    "force_layout",
    "pack",
    "side",
    "strip",
]

Array = np.ndarray[Any, np.dtype[np.float64]]

SPACING = 40.0  # about the distance between linked neighbours
GAP = 60.0  # between clusters, more than two of the largest nodes' radii
ASPECT = 1.6  # the packing aims at a box this much wider than tall, like a screen
DOT = 8.0  # a strip column's width and the height of one memory in it
STRIP_GAP = 120.0  # between the clusters and the strip (room for the strip's title)
STRIP_MAX_HEIGHT = 320.0  # taller columns are squeezed to this
MIN_WIDTH = 800.0
BATCH_CELLS = 1 << 22  # node pairs per numpy run: bounds the memory of a batch (a few float arrays of this size)
ALONE = 256  # graphs bigger than this run alone and unpadded (padding would cost up to 4 times the work)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    side: float


def components(n: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """The connected components of nodes 0..n-1 (isolated nodes are components of one), biggest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda group: (-len(group), group[0]))


def force_layout(
    sizes: Sequence[int], edges: Sequence[Sequence[tuple[int, int, float]]], iterations: int = 80, seed: int = 7
) -> list[Array]:
    """Fruchterman-Reingold for each graph (nodes 0..size-1, edges (a, b, weight 0-1)), scaled into the unit square.

    Small graphs are padded to the next power of two and run together, so a thousand small clusters cost a few
    numpy runs, not a thousand."""
    rng = np.random.default_rng(seed)
    out: list[Array] = [np.zeros((0, 2))] * len(sizes)
    batches: list[tuple[int, list[int]]] = []  # (padded size, graphs)
    small: dict[int, list[int]] = {}
    for i, n in enumerate(sizes):
        if n == 1:
            out[i] = np.full((1, 2), 0.5)
        elif n > ALONE:
            batches.append((n, [i]))
        elif n > 1:
            small.setdefault(1 << (n - 1).bit_length(), []).append(i)
    for width, members in sorted(small.items()):
        per_run = BATCH_CELLS // (width * width)
        batches += [(width, members[start : start + per_run]) for start in range(0, len(members), per_run)]
    for width, batch in batches:
        placed = _run(width, [sizes[i] for i in batch], [edges[i] for i in batch], iterations, rng)
        for i, pos in zip(batch, placed, strict=True):
            out[i] = pos
    return out


def _run(
    width: int,
    sizes: list[int],
    edges: list[Sequence[tuple[int, int, float]]],
    iterations: int,
    rng: np.random.Generator,
) -> list[Array]:
    """One batch of graphs padded to ``width`` nodes: repulsion within each graph, attraction along its edges."""
    m = len(sizes)
    n = np.asarray(sizes, dtype=np.float32)[:, None, None]
    valid = np.arange(width)[None, :] < n[:, :, 0]  # (m, width): which slots hold a node
    k2 = 1.0 / n  # k squared, k = 1 / sqrt(size): the ideal distance between nodes
    if not valid.all():  # padding slots neither push nor are pushed
        k2 = k2 * (valid[:, :, None] & valid[:, None, :])
    pos = rng.random((m, width, 2), dtype=np.float32)
    graph = np.repeat(np.arange(m), [len(e) for e in edges])
    a = graph * width + np.asarray([e[0] for es in edges for e in es], dtype=np.int64)
    b = graph * width + np.asarray([e[1] for es in edges for e in es], dtype=np.int64)
    w = np.asarray([0.2 + e[2] for es in edges for e in es], dtype=np.float32)
    k_edge = 1 / np.sqrt(n[graph, 0, 0])
    gravity = np.float32(0.05) * np.sqrt(n[:, :, 0])[:, :, None]
    temperature = 0.1
    for _ in range(iterations):
        dx = pos[:, :, None, 0] - pos[:, None, :, 0]
        dy = pos[:, :, None, 1] - pos[:, None, :, 1]
        d2 = dx * dx
        d2 += dy * dy
        factor = np.divide(k2, np.maximum(d2, 1e-6, out=d2), out=d2)  # repulsion k^2 / d along the unit vector
        push = np.stack([np.einsum("gij,gij->gi", dx, factor), np.einsum("gij,gij->gi", dy, factor)], axis=2)
        flat, at = push.reshape(-1, 2), pos.reshape(-1, 2)
        if len(w):
            d = at[a] - at[b]
            length = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            pull = d * (length / k_edge * w)[:, None]  # attraction d^2 / k along the unit vector
            np.add.at(flat, a, -pull)
            np.add.at(flat, b, pull)
        push += (0.5 - pos) * gravity  # a little gravity keeps a cluster's loose ends near it
        step = np.linalg.norm(push, axis=2, keepdims=True)
        pos += push / np.maximum(step, 1e-9) * np.minimum(step, temperature)
        temperature *= 0.95
    placed: list[Array] = []
    for g, size in enumerate(sizes):
        p = pos[g, :size].astype(np.float64)
        p -= p.min(axis=0)
        p /= max(float(p.max()), 1e-9)
        placed.append(p + (1 - p.max(axis=0)) / 2)  # centred in the unit square
    return placed


def side(size: int) -> float:
    """A cluster's square: its area grows with its node count."""
    return SPACING * math.sqrt(size) if size > 1 else 0.0


def pack(sides: Sequence[float]) -> tuple[list[Box], float, float]:
    """Squares (sides biggest first) in shelves of columns, none overlapping: their boxes, total width and height.

    A shelf is as tall as its first square; smaller ones stack in columns beside it while they fit."""
    if not sides:
        return [], 0.0, 0.0
    limit = max(sides[0], math.sqrt(ASPECT * sum((s + GAP) ** 2 for s in sides)))
    boxes: list[Box] = []
    shelf_y = shelf_h = col_x = col_w = col_h = 0.0
    for s in sides:
        if boxes and col_h + GAP + s <= shelf_h:  # under the last one, in the same column
            boxes.append(Box(col_x, shelf_y + col_h + GAP, s))
            col_h += GAP + s
            col_w = max(col_w, s)
            continue
        if boxes and col_x + col_w + GAP + s <= limit:  # a new column on this shelf
            col_x += col_w + GAP
        elif boxes:  # a new shelf
            shelf_y += shelf_h + GAP
            shelf_h, col_x = s, 0.0
        else:
            shelf_h = s
        boxes.append(Box(col_x, shelf_y, s))
        col_w = col_h = s
    width = max(box.x + box.side for box in boxes)
    return boxes, width, shelf_y + shelf_h


def clusters(
    n: int, edges: Sequence[tuple[int, int, float]], iterations: int = 80
) -> tuple[Array, list[list[int]], list[Box], float, float]:
    """Positions of nodes 0..n-1 clustered by component: positions, components, their boxes, width and height."""
    groups = components(n, [(a, b) for a, b, _ in edges])
    where = np.zeros(n, dtype=np.int64)  # node -> its index within its component
    owner = np.zeros(n, dtype=np.int64)  # node -> its component
    for g, members in enumerate(groups):
        where[members] = np.arange(len(members))
        owner[members] = g
    local: list[list[tuple[int, int, float]]] = [[] for _ in groups]
    for a, b, weight in edges:
        local[int(owner[a])].append((int(where[a]), int(where[b]), weight))
    shapes = force_layout([len(g) for g in groups], local, iterations)
    boxes, width, height = pack([side(len(g)) for g in groups])
    positions = np.zeros((n, 2))
    for members, shape, box in zip(groups, shapes, boxes, strict=True):
        positions[members] = shape * box.side + (box.x, box.y)
    return positions, groups, boxes, width, height


def strip(
    times: Array, tiers: Sequence[int], top: float, width: float
) -> tuple[Array, float, list[tuple[float, float]]]:
    """Positions on a time strip from ``top`` down (x: time; a column's memories stacked by tier, then time), the
    strip's height, and about six ticks (x, time) for its axis."""
    if len(times) == 0:
        return np.zeros((0, 2)), 0.0, []
    columns = max(int(width // DOT), 1)
    t0, t1 = float(times.min()), float(times.max())
    span = t1 - t0
    column = np.zeros(len(times), dtype=np.int64)
    if span > 0:
        column = np.rint((times - t0) / span * (columns - 1)).astype(np.int64)
    order = np.lexsort((times, np.asarray(tiers), column))
    starts = np.searchsorted(column[order], column[order], side="left")
    rank = np.empty(len(times), dtype=np.int64)
    rank[order] = np.arange(len(times)) - starts
    tallest = int(rank.max()) + 1
    step = min(DOT, STRIP_MAX_HEIGHT / tallest)
    positions = np.stack([column * DOT + DOT / 2, top + DOT / 2 + rank * step], axis=1).astype(np.float64)
    ticks = [(x * DOT + DOT / 2, t0 + span * x / max(columns - 1, 1)) for x in np.linspace(0, columns - 1, 6).round()]
    return positions, DOT + (tallest - 1) * step, ticks if span > 0 else ticks[:1]
