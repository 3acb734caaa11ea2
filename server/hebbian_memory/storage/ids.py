"""Ids for imported rows, the same on every backend: each wanted id where free, else a new one."""

from collections.abc import Callable, Sequence

__all__ = ["assign_ids"]


def assign_ids(wanted: Sequence[int | None], free: set[int], draw: Callable[[int], list[int]]) -> list[int]:
    """Each wanted id where it is in ``free`` and not wanted by an earlier row of the batch, else a new one from
    ``draw(n)`` (the next n of the backend's sequence). The new ids are drawn first, as many as needed, then handed
    out in order, skipping one that a kept id of this batch equals."""
    taken: set[int] = set()
    keep: list[bool] = []
    for i in wanted:
        keep.append(i is not None and i in free and i not in taken)
        if i is not None:
            taken.add(i)
    fresh = iter(draw(keep.count(False)))
    out: list[int] = []
    for i, kept in zip(wanted, keep, strict=True):
        if kept and i is not None:
            out.append(i)
            continue
        new = next(fresh, None)
        while new is None or new in taken:
            new = draw(1)[0]
        taken.add(new)
        out.append(new)
    return out
