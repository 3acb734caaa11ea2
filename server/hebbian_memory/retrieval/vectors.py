"""A usearch HNSW index keyed by memory id: a cache of the embeddings in the database.

The file is written atomically with a sidecar (model, dimension, dtype, size and blake2b digest). On open
the sidecar must match and the digest must be right, else the file is not even handed to usearch: the
index is rebuilt from the database. A loaded index is then reconciled key by key with the database, so a
crash between a database commit and an index save costs a few re-adds, never a wrong answer.
"""

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from hebbian_memory import files
from hebbian_memory._native import usearch_index
from hebbian_memory.config import IndexSettings
from hebbian_memory.embedding.embedder import Vectors
from hebbian_memory.faults import fault

__all__ = ["INDEX_NOT_SAVED", "Ids", "OpenOutcome", "VectorIndex", "VectorSource"]

log = logging.getLogger(__name__)

Ids = npt.NDArray[np.int64]
OpenOutcome = Literal["loaded", "repaired", "rebuilt"]
INDEX_NOT_SAVED = (
    "Nothing was lost: the database holds every memory, and the vector index (a cache of it) is complete in "
    "memory; only its file is behind, and it is saved again by itself."
)
# Fetches the stored embeddings of the given ids, in the given order.
VectorSource = Callable[[Sequence[int]], Vectors]


@dataclass(frozen=True, slots=True)
class _Sidecar:
    model_id: str
    dim: int
    dtype: str
    size: int
    blake2b: str


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class VectorIndex:
    """Cosine ANN search over memory embeddings; thread-safe."""

    def __init__(self, path: Path, model_id: str, dim: int, settings: IndexSettings) -> None:
        self._path = path
        self._sidecar_path = path.with_suffix(path.suffix + ".json")
        self._model_id = model_id
        self._dim = dim
        self._settings = settings
        self._lock = threading.RLock()
        self._index: Any = self._new()
        self._unsaved = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, memory_id: object) -> bool:
        return isinstance(memory_id, int) and bool(self._index.contains(memory_id))

    @property
    def unsaved_changes(self) -> int:
        return self._unsaved

    def _new(self) -> Any:
        s = self._settings
        return usearch_index().Index(
            ndim=self._dim,
            metric="cos",
            dtype=s.dtype,
            connectivity=s.connectivity,
            expansion_add=s.expansion_add,
            expansion_search=s.expansion_search,
        )

    def open(
        self,
        stored_ids: Ids,
        vectors_of: VectorSource,
        progress: Callable[[int], None] = lambda _done: None,
        rebuild: bool = False,
    ) -> OpenOutcome:
        """Load the saved index and reconcile it with ``stored_ids``; rebuild when it cannot be trusted (or
        when asked). ``progress`` hears how many memories a rebuild has added so far."""
        with self._lock:
            loaded = None if rebuild else self._load_trusted()
            if loaded is None:
                self._index = self._new()
                self._add_from(stored_ids, vectors_of, progress)
                self._unsaved = max(len(stored_ids), 1)
                return "rebuilt"
            self._index = loaded
            keys = self._keys()
            extra = np.setdiff1d(keys, stored_ids, assume_unique=True)
            missing = np.setdiff1d(stored_ids, keys, assume_unique=True)
            if extra.size:
                self._index.remove(extra)
            self._add_from(missing, vectors_of)
            if extra.size or missing.size:
                log.info("vector index reconciled: %d added, %d removed", missing.size, extra.size)
                self._unsaved += int(extra.size + missing.size)
                return "repaired"
            return "loaded"

    def _load_trusted(self) -> Any | None:
        expected = {"model_id": self._model_id, "dim": self._dim, "dtype": self._settings.dtype}
        try:
            sidecar = _Sidecar(**json.loads(self._sidecar_path.read_text()))
            if any(getattr(sidecar, k) != v for k, v in expected.items()):
                log.info("vector index was built for other settings; rebuilding")
                return None
            if self._path.stat().st_size != sidecar.size or _digest(self._path) != sidecar.blake2b:
                log.warning("vector index file %s is damaged; rebuilding from the database", self._path)
                return None
            index = self._new()
            index.load(str(self._path))
            return index
        except FileNotFoundError:
            log.info("no vector index at %s yet; building it from the database", self._path)
        except (OSError, ValueError, TypeError, RuntimeError) as e:  # usearch raises RuntimeError on bad files
            log.warning("vector index %s unreadable (%s); rebuilding from the database", self._path, e)
        return None

    def _add_from(
        self, ids: Ids, vectors_of: VectorSource, progress: Callable[[int], None] = lambda _done: None
    ) -> None:
        batch = 5000
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            self._index.add(chunk, vectors_of([int(i) for i in chunk]))
            progress(start + len(chunk))

    def _keys(self) -> Ids:
        return np.sort(np.asarray(self._index.keys[:], dtype=np.int64))

    def ids(self) -> Ids:
        """Every memory id in the index, ascending."""
        with self._lock:
            return self._keys()

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        with self._lock:
            self._index.add(np.asarray(ids, dtype=np.int64), vectors)
            self._unsaved += len(ids)

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            present = [i for i in ids if self._index.contains(i)]
            if present:
                self._index.remove(np.asarray(present, dtype=np.int64))
                self._unsaved += len(present)

    def search(self, vector: Vectors, limit: int) -> list[tuple[int, float]]:
        """Nearest ``limit`` memories as (id, cosine similarity), best first."""
        with self._lock:
            if len(self._index) == 0 or limit <= 0:
                return []
            matches = self._index.search(vector, min(limit, len(self._index)))
            return [(int(k), 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances, strict=True)]

    def vectors(self, ids: Sequence[int]) -> Vectors:
        """The indexed vectors of ``ids`` (all must be present), as float32 rows."""
        with self._lock:
            if not ids:
                return np.zeros((0, self._dim), dtype=np.float32)
            return np.asarray(self._index.get(np.asarray(ids, dtype=np.int64), dtype=np.float32), dtype=np.float32)

    def save(self) -> None:
        """Write the index and its sidecar atomically (owner-only, fsynced, renamed into place; see ``files``). A
        disk that refuses it raises ``StorageFaultError``; the file on disk is then the last one saved, and the
        changes stay unsaved."""
        try:
            self._save()
        except (OSError, RuntimeError) as e:  # usearch reports a failed write as RuntimeError, without errno
            error = fault(self._path, e, "saving the vector index", INDEX_NOT_SAVED)  # asked while the disk is full
            for target in (self._path, self._sidecar_path):
                with suppress(OSError):  # a partial copy would only hold space on a full disk
                    files.remove_leftovers(target)
            raise error from e

    def _save(self) -> None:
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            for target in (self._path, self._sidecar_path):  # a crashed save's; only the data dir's owner saves
                files.remove_leftovers(target)
            # usearch opens its file by name, so it writes in a folder of our own, never at a name planted for it.
            with files.private_folder(self._path) as folder:
                tmp = folder / self._path.name
                self._index.save(str(tmp))
                sidecar = _Sidecar(self._model_id, self._dim, self._settings.dtype, tmp.stat().st_size, _digest(tmp))
                # The old sidecar goes first: a crash in between leaves no sidecar: "rebuild", never a lie.
                self._sidecar_path.unlink(missing_ok=True)
                files.move_into_place(tmp, self._path)
            files.write_private(self._sidecar_path, json.dumps(asdict(sidecar)))
            self._unsaved = 0
