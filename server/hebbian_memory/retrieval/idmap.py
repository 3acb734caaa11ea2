"""IdMap (memory id -> memory id) and IdBytes (memory id -> a small int), compact."""

from array import array

__all__ = ["IdBytes", "IdMap"]

# Ids from one sequence are dense: an array indexed by id holds 100,000 pairs in 0.4 MB, where a dict of them took
# 5 MB (tracemalloc) and its values' ints more. Ids the array would have to grow far for (an imported store's) go
# to a dict.
_INT32 = 2**31 - 1
_SLACK = 1 << 20


class _ById:
    """Values by memory id in an array indexed by id (0: no entry) for ids a sequence gives, in a dict for any
    other id or for a value the array cannot hold."""

    __slots__ = ("_dense", "_sparse")
    _TYPECODE = "i"
    _MAX = _INT32

    def __init__(self) -> None:
        self._dense = array(self._TYPECODE)
        self._sparse: dict[int, int] = {}

    def _held(self, key: int) -> int | None:
        held = self._dense[key] if 0 <= key < len(self._dense) else 0
        return held or self._sparse.get(key)

    def __setitem__(self, key: int, value: int) -> None:
        self.pop(key)
        if 0 < key <= 2 * len(self._dense) + _SLACK and 0 < value <= self._MAX:
            if key >= len(self._dense):
                self._dense.frombytes(bytes(self._dense.itemsize * (key + 1 - len(self._dense))))
            self._dense[key] = value
        else:  # not what a sequence gives, or far past the rest: kept aside
            self._sparse[key] = value

    def pop(self, key: int) -> None:
        """Remove ``key``'s entry, if there is one."""
        if 0 <= key < len(self._dense):
            self._dense[key] = 0
        self._sparse.pop(key, None)


class IdMap(_ById):
    """A map between memory ids (4 bytes per id)."""

    __slots__ = ()

    def get(self, key: int) -> int | None:
        return self._held(key)

    def __getitem__(self, key: int) -> int:
        found = self._held(key)
        if found is None:
            raise KeyError(key)
        return found


class IdBytes(_ById):
    """Memory id -> a small int, 1-255 (a byte per id: 100,000 ids in 0.1 MB); 0 means none."""

    __slots__ = ()
    _TYPECODE = "B"
    _MAX = 255

    def get(self, key: int) -> int:
        return self._held(key) or 0

    def __setitem__(self, key: int, value: int) -> None:
        if not 0 <= value <= self._MAX:
            raise ValueError(f"IdBytes holds 0-255, not {value}")
        if value:
            super().__setitem__(key, value)
        else:
            self.pop(key)
