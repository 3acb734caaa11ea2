"""Scoring helpers shared by the retrieval benchmarks."""

import os
import platform
from collections.abc import Sequence
from typing import Any


def auroc(positives: Sequence[float | None], negatives: Sequence[float | None]) -> float:
    """The chance that a random positive scores above a random negative (ties count half; None, a question
    with no hits, scores lowest)."""
    low = float("-inf")
    pos = [low if p is None else p for p in positives]
    neg = [low if n is None else n for n in negatives]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
