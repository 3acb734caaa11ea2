"""An in-memory BM25F keyword index keyed by memory id: a cache rebuilt from the database at start.

Postings are kept per field and term as growable int arrays, so a query touches only the postings of
its own terms and scores them with numpy. Removal marks a slot dead; dead slots are compacted away
when they are a quarter of the index.
"""

import math
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from hebbian_memory.retrieval.text import terms

__all__ = ["BM25Index", "FieldSpec", "LexicalIndex"]


class LexicalIndex(Protocol):
    """Keyword search over memories; a rebuildable cache of the database."""

    def add(self, memory_id: int, fields: Mapping[str, str]) -> None: ...

    def add_many(self, docs: Sequence[tuple[int, Mapping[str, str]]]) -> None: ...

    def fill_field(self, memory_id: int, name: str, text: str) -> None: ...

    def remove(self, memory_id: int) -> None: ...

    def search(self, query: str, limit: int, only: Sequence[int] | None = None) -> list[tuple[int, float]]: ...

    def full_score(self, query: str) -> float: ...

    def __len__(self) -> int: ...

    def __contains__(self, memory_id: object) -> bool: ...


@dataclass(frozen=True, slots=True)
class FieldSpec:
    weight: float = 1.0
    b: float = 0.75  # length normalisation: 0 none, 1 full


class _Postings:
    __slots__ = ("slots", "tfs")

    def __init__(self, slot: int, tf: float) -> None:
        self.slots = array("i", (slot,))
        self.tfs = array("f", (tf,))


# A term that one memory alone has in a field (most numbers and names) is held as one int, slot and term frequency
# packed, not as two arrays: at 100,000 memories (300,000 such postings) the process held 58 MB less.
_TF_BITS = 20
_TF_MAX = (1 << _TF_BITS) - 1
_Held = _Postings | int


def _append(postings: dict[str, _Held], term: str, slot: int, tf: int) -> None:
    held = postings.get(term)
    if held is None:
        postings[term] = slot << _TF_BITS | min(tf, _TF_MAX)
    elif isinstance(held, int):
        grown = postings[term] = _Postings(held >> _TF_BITS, float(held & _TF_MAX))
        grown.slots.append(slot)
        grown.tfs.append(float(tf))
    else:
        held.slots.append(slot)
        held.tfs.append(float(tf))


def _term_list(packed: bytes) -> "array[int]":
    ids = array("i")
    ids.frombytes(packed)
    return ids


def _arrays(held: _Held) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """Slots and term frequencies of a term's postings."""
    if isinstance(held, int):
        return np.array([held >> _TF_BITS], dtype=np.int32), np.array([held & _TF_MAX], dtype=np.float32)
    return np.frombuffer(held.slots, dtype=np.int32), np.frombuffer(held.tfs, dtype=np.float32)


class BM25Index:
    """BM25F over named text fields; thread-safe."""

    def __init__(self, fields: Mapping[str, FieldSpec] | None = None, k1: float = 1.2) -> None:
        self._fields = dict(fields or {"content": FieldSpec()})
        self._k1 = k1
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._slot_of: dict[int, int] = {}
        self._ids = array("q")
        self._alive = array("b")
        self._lengths = {name: array("f") for name in self._fields}
        self._length_sums = dict.fromkeys(self._fields, 0.0)
        self._postings: dict[str, dict[str, _Held]] = {name: {} for name in self._fields}
        # Each memory's distinct terms as packed term ids (for removal), and document frequencies by term id: at
        # 100,000 memories a tuple of terms per memory and a Counter made the index 7 MB larger.
        self._term_ids: dict[str, int] = {}
        self._df = array("i")
        self._doc_terms: list[bytes] = []
        self._dead = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._slot_of

    def ids(self) -> list[int]:
        with self._lock:
            return list(self._slot_of)

    def add(self, memory_id: int, fields: Mapping[str, str]) -> None:
        """Index (or re-index) a memory's fields; unknown field names are an error."""
        self.add_many([(memory_id, fields)])

    def add_many(self, docs: Sequence[tuple[int, Mapping[str, str]]]) -> None:
        """Index (or re-index) many memories. Each distinct text is analysed once: a memory's text is also its
        neighbours' context, and many share a date, so a rebuild analyses about a third of the field texts."""
        analysed: dict[str, Counter[str]] = {}
        for memory_id, fields in docs:
            unknown = set(fields) - set(self._fields)
            if unknown:
                raise ValueError(f"unknown lexical fields: {sorted(unknown)}")
            counts: dict[str, Counter[str]] = {}
            for name in self._fields:
                text = fields.get(name, "")
                found = analysed.get(text)
                if found is None:
                    # Interned: each memory keeps its terms (for removal), and equal strings are then shared.
                    found = analysed[text] = Counter(map(sys.intern, terms(text)))
                counts[name] = found
            self._add_analysed(memory_id, counts)

    def _add_analysed(self, memory_id: int, analysed: Mapping[str, Counter[str]]) -> None:
        with self._lock:
            if memory_id in self._slot_of:
                self._remove_locked(memory_id)
            slot = len(self._ids)
            self._slot_of[memory_id] = slot
            self._ids.append(memory_id)
            self._alive.append(1)
            all_terms: set[str] = set()
            for name, counts in analysed.items():
                length = float(sum(counts.values()))
                self._lengths[name].append(length)
                self._length_sums[name] += length
                postings = self._postings[name]
                for term, tf in counts.items():
                    _append(postings, term, slot, tf)
                all_terms.update(counts)
            self._doc_terms.append(self._count_terms(all_terms))

    def _count_terms(self, new_terms: set[str]) -> bytes:
        """Count one more memory holding each of ``new_terms``; their ids, packed."""
        ids = array("i")
        for term in new_terms:
            term_id = self._term_ids.get(term)
            if term_id is None:
                term_id = self._term_ids[term] = len(self._df)
                self._df.append(0)
            self._df[term_id] += 1
            ids.append(term_id)
        return ids.tobytes()

    def fill_field(self, memory_id: int, name: str, text: str) -> None:
        """Give an indexed memory's empty field its text (e.g. the next memory of its episode has arrived)."""
        counts = Counter(map(sys.intern, terms(text)))
        with self._lock:
            slot = self._slot_of.get(memory_id)
            if slot is None or not counts:
                return
            if self._lengths[name][slot] > 0:
                raise ValueError(f"field {name!r} of memory {memory_id} is already filled; re-add the memory")
            length = float(sum(counts.values()))
            self._lengths[name][slot] = length
            self._length_sums[name] += length
            postings = self._postings[name]
            for term, tf in counts.items():
                _append(postings, term, slot, tf)
            held = set(_term_list(self._doc_terms[slot]))
            new_terms = {term for term in counts if self._term_ids.get(term) not in held}
            self._doc_terms[slot] += self._count_terms(new_terms)

    def remove(self, memory_id: int) -> None:
        with self._lock:
            if memory_id in self._slot_of:
                self._remove_locked(memory_id)
                if self._dead > 1000 and self._dead * 4 > len(self._ids):
                    self._compact_locked()

    def _remove_locked(self, memory_id: int) -> None:
        slot = self._slot_of.pop(memory_id)
        self._alive[slot] = 0
        self._dead += 1
        for term_id in _term_list(self._doc_terms[slot]):
            self._df[term_id] -= 1
        self._doc_terms[slot] = b""
        for name in self._fields:
            self._length_sums[name] -= self._lengths[name][slot]

    def _compact_locked(self) -> None:
        """Rebuild the arrays without dead slots (postings keep their relative order)."""
        old_alive = np.frombuffer(self._alive, dtype=np.int8).astype(bool)
        new_slot = np.cumsum(old_alive) - 1
        self._ids = array("q", np.frombuffer(self._ids, dtype=np.int64)[old_alive].tobytes())
        self._alive = array("b", bytes([1]) * len(self._ids))
        for name in self._fields:
            lengths = np.frombuffer(self._lengths[name], dtype=np.float32)[old_alive]
            self._lengths[name] = array("f", lengths.tobytes())
            postings = self._postings[name]
            for term, held in list(postings.items()):
                slots, tfs = _arrays(held)
                keep = old_alive[slots]
                if not keep.any():
                    del postings[term]
                elif isinstance(held, int):
                    postings[term] = int(new_slot[slots[0]]) << _TF_BITS | held & _TF_MAX
                else:
                    held.slots = array("i", new_slot[slots[keep]].astype(np.int32).tobytes())
                    held.tfs = array("f", tfs[keep].tobytes())
        self._doc_terms = [t for t, a in zip(self._doc_terms, old_alive, strict=True) if a]
        self._slot_of = {int(mid): i for i, mid in enumerate(self._ids)}
        self._term_ids = {term: i for term, i in self._term_ids.items() if self._df[i] > 0}  # ids are not reused
        self._dead = 0

    def search(self, query: str, limit: int, only: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Top ``limit`` (memory id, BM25F score) pairs, best first; ``only`` restricts the candidates."""
        query_terms = list(dict.fromkeys(terms(query)))
        if not query_terms or limit <= 0:
            return []
        with self._lock:
            n_docs = len(self._slot_of)
            if n_docs == 0:
                return []
            scores = np.zeros(len(self._ids), dtype=np.float32)
            for term in query_terms:
                term_id = self._term_ids.get(term)
                df = 0 if term_id is None else self._df[term_id]
                if df <= 0:
                    continue
                idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
                tf = self._term_frequencies(term, len(self._ids))
                scores += np.float32(idf) * tf * (self._k1 + 1.0) / (tf + self._k1)
            scores *= np.frombuffer(self._alive, dtype=np.int8)
            if only is not None:
                mask = np.zeros(len(self._ids), dtype=bool)
                slots = [self._slot_of[i] for i in only if i in self._slot_of]
                mask[slots] = True
                scores *= mask
            hits = np.flatnonzero(scores > 0)
            if hits.size > limit:
                hits = hits[np.argpartition(-scores[hits], limit - 1)[:limit]]
            hits = hits[np.argsort(-scores[hits], kind="stable")]
            slots: list[int] = hits.tolist()
            return [(int(self._ids[s]), float(scores[s])) for s in slots]

    def full_score(self, query: str) -> float:
        """What a memory holding each of the query's terms once in its text would score: the sum of their IDFs,
        a term no memory holds counting as the rarest. A search score divided by this is the informative share
        of the query that a memory matches (a lone common word: little; every rare word: about 1)."""
        query_terms = list(dict.fromkeys(terms(query)))
        with self._lock:
            n_docs = len(self._slot_of)
            total = 0.0
            for term in query_terms:
                term_id = self._term_ids.get(term)
                df = 0 if term_id is None else max(self._df[term_id], 0)
                total += math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            return total

    def _term_frequencies(self, term: str, size: int) -> npt.NDArray[np.float32]:
        """Length-normalised, field-weighted term frequency per slot (the BM25F pseudo-tf)."""
        tf = np.zeros(size, dtype=np.float32)
        n_live = max(len(self._slot_of), 1)
        for name, spec in self._fields.items():
            held = self._postings[name].get(term)
            if held is None:
                continue
            slots, raw = _arrays(held)
            avg = max(self._length_sums[name] / n_live, 1.0)
            lengths = np.frombuffer(self._lengths[name], dtype=np.float32)[slots]
            norm = 1.0 - spec.b + spec.b * lengths / avg
            np.add.at(tf, slots, spec.weight * raw / norm)
        return tf
