"""A second ``MemoryStore``: every row in Python dicts, nothing on disk. It is written against storage.base alone,
to show the service needs nothing of DuckDB, and runs the service's own tests fast."""

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from hebbian_memory.errors import StoredMeanwhileError
from hebbian_memory.storage.base import MemoryStore
from hebbian_memory.storage.growth import Growth, GrowthRule, grown
from hebbian_memory.storage.inmemory.state import Memory, frozen_vector, stored_use, utc
from hebbian_memory.storage.inmemory.transfer import InMemoryTransfer
from hebbian_memory.storage.rows import (
    PURGE_DUE,
    Chain,
    Counts,
    DocumentRow,
    Event,
    Filters,
    Link,
    LinkVersion,
    MemoryRow,
    MemoryState,
    NewMemory,
    SessionRow,
    StoredMemory,
    UseRow,
)

__all__ = ["InMemoryStore"]


class InMemoryStore(InMemoryTransfer):
    """Thread-safe, one lock; every public method is one transaction (see ``core``). Lost when the process ends."""

    # Memories

    def insert(self, memories: Sequence[NewMemory], now: datetime, chain: Chain | None = None) -> list[int]:
        if not memories:
            return []
        ts = utc(now)
        with self._write() as s:
            if any((m.project, m.content_hash) in s.by_hash for m in memories):  # as a shared database refuses it
                raise StoredMeanwhileError("A memory with this text is already stored in the project.")
            ids = s.take_ids("memories", len(memories))
            for i, m in zip(ids, memories, strict=True):
                row = StoredMemory(
                    i, m.project, m.content, m.content_hash, m.tags, m.metadata, m.importance, ts, ts,
                    m.event_time, ts, 0, 1.0, 1, m.session_id, 0, None, m.embedding_model, m.embedding,
                )  # fmt: skip
                s.add_memory(Memory.of(row, i))
                s.events[s.next_event] = (i, m.session_id, "remembered", ts)
                s.next_event += 1
            if chain is not None:
                pairs = [(a, b) for a, b in zip([chain.after, *ids[:-1]], ids, strict=True) if a is not None]
                s.write_links([Link(a, b, chain.weight, 1, "temporal", 0, ts, ts, ts) for a, b in pairs])
        return ids

    def ids_by_hash(self, hashes: Sequence[str], project: str) -> dict[str, int]:
        s = self._read()
        return {h: s.by_hash[(project, h)][0] for h in hashes if (project, h) in s.by_hash}

    def reinforce(
        self, memory_id: int, tags: Sequence[str], importance: float, session_id: int | None, now: datetime
    ) -> None:
        ts = utc(now)
        with self._write() as s:
            m = s.memories.get(memory_id)
            if m is None:  # not a stored id: the caller broke the contract; nothing to reinforce
                return
            s.memories[memory_id] = replace(
                m,
                access_count=m.access_count + 1,
                last_accessed_at=ts,
                updated_at=ts,
                strength=1.0,
                importance=max(m.importance, float(importance)),
                tags=tuple(dict.fromkeys((*m.tags, *tags))),
            )
            s.events[s.next_event] = (memory_id, session_id, "reinforced", ts)
            s.next_event += 1

    def get(self, ids: Sequence[int]) -> dict[int, MemoryRow]:
        s = self._read()
        return {i: s.memories[i].row() for i in ids if i in s.memories}

    def recent(self, limit: int, project: str) -> list[int]:
        s = self._read()
        return heapq.nlargest(limit, (i for i, m in s.memories.items() if m.project == project))

    def missing(self, ids: Sequence[int]) -> set[int]:
        s = self._read()
        return {i for i in ids if i not in s.memories}

    def all_ids(self) -> npt.NDArray[np.int64]:
        return np.asarray(sorted(self._read().memories), dtype=np.int64)

    def embeddings(self, ids: Sequence[int], dim: int) -> npt.NDArray[np.float32]:
        s = self._read()
        out = np.empty((len(ids), dim), dtype=np.float32)
        for k, i in enumerate(ids):
            out[k] = s.memories[i].embedding  # an unknown id raises KeyError, as the contract says
        return out

    def iter_contents(self, batch: int = 5000) -> Iterator[list[tuple[int, str]]]:
        s = self._read()
        ids = sorted(s.memories)
        for start in range(0, len(ids), batch):
            yield [(i, s.memories[i].content) for i in ids[start : start + batch]]

    def models_in_use(self) -> set[str]:
        return {m.embedding_model for m in self._read().memories.values()}

    def replace_embeddings(self, vectors: dict[int, npt.NDArray[np.float32]], model: str) -> None:
        with self._write() as s:
            for i, v in vectors.items():
                if i in s.memories:
                    s.memories[i] = replace(s.memories[i], embedding=frozen_vector(v), embedding_model=model)
                    s.logged.append(("stored", i))

    def filter_ids(self, filters: Filters, limit: int) -> list[int] | None:
        found: list[int] = []
        for i, m in sorted(self._read().memories.items()):
            if m.matches(filters):
                found.append(i)
                if len(found) > limit:
                    return None
        return found

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        s = self._read()
        return {i for i in ids if i in s.memories and s.memories[i].matches(filters)}

    def select_for_forget(
        self, ids: Sequence[int] | None, tags: Sequence[str], before: datetime | None, project: str | None
    ) -> list[int]:
        s = self._read()
        among = s.memories.keys() if ids is None else set(ids) & s.memories.keys()
        wanted = Filters(tags=tags, project=project)
        return sorted(
            i
            for i in among
            if s.memories[i].matches(wanted) and (before is None or s.memories[i].created_at < utc(before))
        )

    def delete(self, ids: Sequence[int], purge_due: bool = False) -> None:
        if not ids:
            return
        with self._write() as s:
            if purge_due:
                s.meta[PURGE_DUE] = "1"
            s.remove_memories(set(ids))

    # Documents: memories with their episodic neighbours

    def last_of_session(self, session_id: int, before_id: int) -> tuple[int, str] | None:
        s = self._read()
        earlier = [i for i in s.by_session.get(session_id, ()) if i < before_id]
        return (earlier[-1], s.memories[earlier[-1]].content) if earlier else None

    def documents(self, session_ids: Sequence[int] | None = None) -> list[DocumentRow]:
        s = self._read()
        if session_ids is None:
            ids = sorted(s.memories)
        else:
            ids = sorted({i for session in set(session_ids) for i in s.by_session.get(session, ())})
        return [s.document(i) for i in ids]

    def iter_documents(self, batch: int) -> Iterator[list[DocumentRow]]:
        s = self._read()
        ids = sorted(s.memories)
        for start in range(0, len(ids), batch):
            yield [s.document(i) for i in ids[start : start + batch]]

    def documents_around(self, ids: Sequence[int]) -> list[DocumentRow]:
        s = self._read()
        around: set[int] = set()
        for i in ids:
            if i in s.memories:
                around.add(i)
                around.update(n for n in s.neighbours(i) if n is not None)
        return [s.document(i) for i in sorted(around)]

    def sessions_of(self, ids: Sequence[int]) -> set[int]:
        s = self._read()
        return {m.session_id for i in ids if (m := s.memories.get(i)) is not None and m.session_id is not None}

    # Sessions

    def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str, now: datetime
    ) -> int:
        with self._write() as s:
            i = s.take_ids("sessions", 1)[0]
            s.sessions[i] = SessionRow(i, transport, client_name, client_version, project, utc(now), None)
        return i

    def end_session(self, session_id: int, now: datetime) -> None:
        with self._write() as s:
            session = s.sessions.get(session_id)
            if session is not None and session.ended_at is None:
                s.sessions[session_id] = replace(session, ended_at=utc(now))

    # Links, access events, consolidation state

    def graph(self, batch: int = 10_000) -> Iterator[tuple[int, int, float, str]]:
        for link in self._read().links.values():
            yield link.source_id, link.target_id, link.weight, link.kind

    def all_links(self) -> list[Link]:
        return list(self._read().links.values())

    def links_between(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Link]:
        s = self._read()
        return {p: s.links[p] for p in pairs if p in s.links}

    def save_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]] = (), events: Sequence[Event] = ()
    ) -> None:
        with self._write() as s:
            s.add_events(events)
            for pair in delete:
                s.drop_link(pair)
            s.write_links(links)

    def settle_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]], as_of: Mapping[tuple[int, int], LinkVersion]
    ) -> set[tuple[int, int]]:
        with self._write() as s:
            wanted = [*((x.source_id, x.target_id) for x in links), *delete]
            settled = {p for p in wanted if p in s.links and _version(s.links[p]) == as_of.get(p)}
            for p in delete:
                if p in settled:
                    s.drop_link(p)
            s.write_links([x for x in links if (x.source_id, x.target_id) in settled])
        return settled

    def grow_links(
        self, growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event] = ()
    ) -> list[tuple[Link, bool]]:
        ts = utc(now)
        with self._write() as s:
            s.add_events(events)
            out = [
                (grown(s.links.get((g.source_id, g.target_id)), g, rule, ts), (g.source_id, g.target_id) not in s.links)
                for g in growth
            ]
            s.write_links([link for link, _ in out])
        return out

    def record_events(self, events: Sequence[Event]) -> None:
        if events:
            with self._write() as s:
                s.add_events(events)

    def trim_events(self, before: datetime, keep: int) -> int:
        with self._write() as s:
            if not s.events:
                return 0
            cut = max(s.events) - keep
            gone = [k for k, e in s.events.items() if e[3] < utc(before) or k <= cut]
            for k in gone:
                del s.events[k]
        return len(gone)

    def memory_states(self) -> list[MemoryState]:
        return [_state(m) for m in self._read().memories.values()]

    def set_memory_states(self, ids: Sequence[int], strengths: Sequence[float], tiers: Sequence[int]) -> None:
        if not ids:
            return
        with self._write() as s:
            for i, strength, tier in zip(ids, strengths, tiers, strict=True):
                if i in s.memories:
                    s.memories[i] = replace(s.memories[i], strength=float(strength), tier=int(tier))

    def mark_replayed(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        ts = utc(now)
        with self._write() as s:
            for i in set(ids):  # one replay per call, however often an id is named (as SQL's IN)
                if (m := s.memories.get(i)) is not None:
                    s.memories[i] = replace(m, replay_count=m.replay_count + 1, last_replayed_at=ts)

    def links_of(self, memory_id: int) -> list[Link]:
        s = self._read()
        return [s.links[p] for p in sorted(p for p in s.links if memory_id in p)]

    # Use reports

    def uses(self, ids: Sequence[int] | None = None) -> list[UseRow]:
        uses = self._read().uses
        return list(uses.values()) if ids is None else [uses[i] for i in set(ids) if i in uses]

    def clear_cues(self) -> None:
        with self._write() as s:
            s.uses = {i: replace(u, cue=None, cue_weight=0.0) for i, u in s.uses.items()}

    def save_use(
        self, rows: Sequence[UseRow], growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event]
    ) -> list[Link]:
        ts = utc(now)
        with self._write() as s:
            for r in rows:
                if r.memory_id in s.memories:
                    s.uses[r.memory_id] = stored_use(r, r.memory_id)
                    s.logged.append(("use", r.memory_id))
            links = [grown(s.links.get((g.source_id, g.target_id)), g, rule, ts) for g in growth]
            s.write_links(links)
            s.add_events(events)
        return links

    # Lifecycle, meta and counts

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def checkpoint(self) -> None:
        self._read()  # nothing to fold: no change log; only a closed store refuses

    def purge(self) -> tuple[int, int]:
        """No file keeps deleted bytes: clearing ``PURGE_DUE`` is the whole rewrite (no bytes before or after)."""
        with self._export_lock, self._write() as s:
            s.meta.pop(PURGE_DUE, None)
        return 0, 0

    def get_meta(self, key: str) -> str | None:
        return self._read().meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as s:
            s.meta[key] = value

    def count(self) -> int:
        return len(self._read().memories)

    def project_counts(self) -> dict[str, int]:
        return dict(Counter(m.project for m in self._read().memories.values()))

    def counts(self) -> Counts:
        s = self._read()
        return Counts(
            memories_by_tier=dict(Counter(m.tier for m in s.memories.values())),
            links_by_tier=dict(Counter(link.tier for link in s.links.values())),
            links_by_kind=dict(Counter(link.kind for link in s.links.values())),
        )


def _state(m: Memory) -> MemoryState:
    last_use = m.last_accessed_at if m.last_replayed_at is None else max(m.last_accessed_at, m.last_replayed_at)
    return MemoryState(
        m.id, m.tier, m.access_count + m.replay_count, m.importance, last_use, m.last_replayed_at, m.strength
    )


# Checked by pyright (strict): the in-memory store offers everything the service calls on a store.
_IS_A_MEMORY_STORE: type[MemoryStore] = InMemoryStore


def _version(link: Link) -> LinkVersion:
    return (link.updated_at, link.co_access_count)
