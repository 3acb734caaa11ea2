"""What the layers above call on a store, as Protocols over the neutral rows of ``rows``: a backend implements
``MemoryStore`` (DuckDB's is ``storage.duckdb``), and each caller names the narrower protocol it uses.

Contracts every backend keeps:
- Every method is one transaction: it happens whole or not at all, and is safe to call from any thread.
- Times are aware UTC datetimes in and out (stored to the microsecond).
- Ids are positive and never reused within one store; ids of memories and of sessions are separate spaces.
- A link is stored once, as ``source_id < target_id``; deleting a memory deletes its links, access events and
  use record.
- A disk that refuses a write raises ``StorageFaultError`` and changes nothing; a damaged store raises
  ``DatabaseDamagedError``. No other error is part of the contract.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from hebbian_memory.storage.growth import Growth, GrowthRule
from hebbian_memory.storage.rows import (
    Chain,
    Changes,
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
    Totals,
    UseRow,
)

__all__ = [
    "ChangeLog",
    "DocumentRows",
    "ExportRows",
    "Lifecycle",
    "LinkRows",
    "MemoryRows",
    "MemoryStore",
    "SessionRows",
    "Transfer",
    "UseRows",
]


class MemoryRows(Protocol):
    """The memories themselves: insert, read, filter, re-embed and delete."""

    def insert(self, memories: Sequence[NewMemory], now: datetime, chain: Chain | None = None) -> list[int]:
        """Store ``memories`` (access count 0, strength 1, tier 1, created/updated/last accessed ``now``) with a
        'remembered' access event each; their new ids, in order, increasing. With ``chain``, also a temporal link
        (weight ``chain.weight``, tier 1, co-access 0, all times ``now``) from ``chain.after`` (if not None) to the
        first and from each to the next. Empty ``memories``: nothing is written, []. A store several servers
        write raises ``StoredMeanwhileError`` (and writes nothing) for a (project, hash) already stored."""
        ...

    def ids_by_hash(self, hashes: Sequence[str], project: str) -> dict[str, int]:
        """{content hash: id} for the memories of ``project`` with one of ``hashes``; hashes not stored are absent.
        The service stores one memory per (project, hash), so which id a repeated hash gives is left open."""
        ...

    def reinforce(
        self, memory_id: int, tags: Sequence[str], importance: float, session_id: int | None, now: datetime
    ) -> None:
        """An exact duplicate remembered again: access count +1, last accessed and updated ``now``, strength 1,
        importance the higher of the two, ``tags`` added to its tags (no repeats); a 'reinforced' access event.
        Callers pass a stored id (found by :meth:`ids_by_hash` under the same lock)."""
        ...

    def get(self, ids: Sequence[int]) -> dict[int, MemoryRow]:
        """{id: row} for those of ``ids`` that exist (unknown ids are absent, not an error); tags sorted."""
        ...

    def recent(self, limit: int, project: str) -> list[int]:
        """Ids of the ``limit`` newest memories of ``project`` (highest id first)."""
        ...

    def missing(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that name no memory."""
        ...

    def all_ids(self) -> npt.NDArray[np.int64]:
        """Every memory id, ascending."""
        ...

    def embeddings(self, ids: Sequence[int], dim: int) -> npt.NDArray[np.float32]:
        """The stored vectors of ``ids`` as a (len(ids), dim) array, in the order given. Every id must exist
        (an unknown one raises KeyError)."""
        ...

    def iter_contents(self, batch: int = 5000) -> Iterator[list[tuple[int, str]]]:
        """Every (id, content), ascending id, in lists of at most ``batch``; memories added meanwhile with a
        higher id may be included."""
        ...

    def models_in_use(self) -> set[str]:
        """The embedding models of the stored vectors (empty for an empty store)."""
        ...

    def replace_embeddings(self, vectors: dict[int, npt.NDArray[np.float32]], model: str) -> None:
        """Store new vectors (and their model) for these ids; unknown ids are ignored."""
        ...

    def filter_ids(self, filters: Filters, limit: int) -> list[int] | None:
        """The ids of every memory matching ``filters`` (any order), or None when more than ``limit`` match."""
        ...

    def matching(self, ids: Sequence[int], filters: Filters) -> set[int]:
        """Those of ``ids`` that exist and match every filter (tags: all of them; since/until: the event time,
        inclusive; project: equal)."""
        ...

    def select_for_forget(
        self, ids: Sequence[int] | None, tags: Sequence[str], before: datetime | None, project: str | None
    ) -> list[int]:
        """Ids, ascending, of the memories matching every given criterion: among ``ids`` (None: any), having all
        ``tags``, created strictly before ``before``, in ``project`` (None: any)."""
        ...

    def delete(self, ids: Sequence[int], purge_due: bool = False) -> None:
        """Delete these memories with their links, access events and use records (unknown ids are ignored).
        With ``purge_due``, the same transaction sets the meta key ``PURGE_DUE`` (to '1')."""
        ...


class DocumentRows(Protocol):
    """Memories read with their episodic neighbours: what the keyword index is built from."""

    def last_of_session(self, session_id: int, before_id: int) -> tuple[int, str] | None:
        """(id, content) of the newest memory of the session with an id below ``before_id``; None if none."""
        ...

    def documents(self, session_ids: Sequence[int] | None = None) -> list[DocumentRow]:
        """Every memory (or those of ``session_ids``) with its neighbours in its session, ascending id.
        A memory without a session has no neighbours; an episode is a session's memories in id order."""
        ...

    def iter_documents(self, batch: int) -> Iterator[list[DocumentRow]]:
        """Every memory as in :meth:`documents`, ascending id, in lists of at most ``batch``, from one
        consistent moment (writes meanwhile are not seen)."""
        ...

    def documents_around(self, ids: Sequence[int]) -> list[DocumentRow]:
        """The memories ``ids`` and their immediate neighbours in their sessions, each with its own neighbours,
        ascending id (unknown ids are ignored)."""
        ...

    def sessions_of(self, ids: Sequence[int]) -> set[int]:
        """The sessions these memories belong to (memories without one, and unknown ids, add nothing)."""
        ...


class SessionRows(Protocol):
    """Client sessions."""

    def start_session(
        self, transport: str, client_name: str | None, client_version: str | None, project: str, now: datetime
    ) -> int:
        """A new session started ``now``; its id (increasing)."""
        ...

    def end_session(self, session_id: int, now: datetime) -> None:
        """Mark the session ended ``now``; an unknown or already ended session is left as it is."""
        ...


class LinkRows(Protocol):
    """Links, access events and the consolidation state of memories: what learning reads and writes."""

    def graph(self, batch: int = 10_000) -> Iterator[tuple[int, int, float, str]]:
        """(source, target, weight, kind) of every link, any order, from one consistent moment."""
        ...

    def all_links(self) -> list[Link]:
        """Every link, any order."""
        ...

    def links_between(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Link]:
        """{(low, high): link} for those of these (low id, high id) pairs that are stored."""
        ...

    def settle_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]], as_of: Mapping[tuple[int, int], LinkVersion]
    ) -> set[tuple[int, int]]:
        """A consolidation pass's writes, in one transaction: write each of ``links`` and delete each of ``delete``
        only if the stored link's (updated_at, co_access_count) still equals ``as_of`` for its pair (what the pass
        planned from):
        a link grown or written meanwhile, by any server, keeps its newer state. The pairs written or deleted."""
        ...

    def save_links(
        self, links: Sequence[Link], delete: Sequence[tuple[int, int]] = (), events: Sequence[Event] = ()
    ) -> None:
        """In one transaction: record ``events`` (as :meth:`record_events`), delete the links ``delete`` names
        (absent ones ignored), and write ``links`` whole (insert, or replace the stored one of the same pair)."""
        ...

    def grow_links(
        self, growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event] = ()
    ) -> list[tuple[Link, bool]]:
        """In one transaction, atomically for each link (another writer's growth of the same link between this
        call's read and write is never lost): record ``events``, then grow each link as ``storage.growth.grown`` says,
        from its stored state (a new link if none). Each link as written and whether it is new, in order. Pairs
        are distinct (low id, high id) of stored memories."""
        ...

    def record_events(self, events: Sequence[Event]) -> None:
        """Record access events; those of memories no longer stored are dropped. A 'recalled' event is an
        access: the memory's access count +1 and its last access the later of the stored one and the event's."""
        ...

    def trim_events(self, before: datetime, keep: int) -> int:
        """Delete access events older than ``before`` and all but the newest ``keep``; how many were deleted."""
        ...

    def memory_states(self) -> list[MemoryState]:
        """The consolidation state of every memory, any order (``uses``: access count plus replay count;
        ``last_use``: the later of the last access and the last replay)."""
        ...

    def set_memory_states(self, ids: Sequence[int], strengths: Sequence[float], tiers: Sequence[int]) -> None:
        """Set each memory's strength and tier (parallel sequences); unknown ids are ignored."""
        ...

    def mark_replayed(self, ids: Sequence[int], now: datetime) -> None:
        """Each memory replayed ``now``: its replay count +1, last replayed ``now``; unknown ids are ignored."""
        ...

    def links_of(self, memory_id: int) -> list[Link]:
        """Every link touching ``memory_id``, by (source, target) ascending; [] for an unknown id."""
        ...


class UseRows(Protocol):
    """What assistants reported about the memories they were shown."""

    def uses(self, ids: Sequence[int] | None = None) -> list[UseRow]:
        """Every stored use record (or those of ``ids``), any order (memories never reported on have none)."""
        ...

    def clear_cues(self) -> None:
        """Set every use record's cue to None and its cue weight to 0; the counts stay."""
        ...

    def save_use(
        self, rows: Sequence[UseRow], growth: Sequence[Growth], rule: GrowthRule, now: datetime, events: Sequence[Event]
    ) -> list[Link]:
        """One report whole, in one transaction: write ``rows`` (replacing a memory's record; rows of memories not
        stored are dropped), grow links as :meth:`LinkRows.grow_links` does, record ``events``; the links as
        written."""
        ...


class ExportRows(Protocol):
    """Every row of one consistent moment of the store, read while writers carry on."""

    def totals(self) -> Totals:
        """How many sessions, memories and links this moment holds."""
        ...

    def schema_version(self) -> int:
        """The version of the rows' shape, recorded in an export's header (informative: import ignores it). It is
        DuckDB's schema number, which every backend reports for the same rows (storage/inmemory keeps it in step)."""
        ...

    def sessions(self) -> Iterator[SessionRow]:
        """Every session, ascending id."""
        ...

    def memories(self) -> Iterator[StoredMemory]:
        """Every memory with its use record (if any), ascending id, read a batch at a time (never all at once)."""
        ...

    def links(self) -> Iterator[Link]:
        """Every link, by (source, target) ascending, read a batch at a time."""
        ...


class Transfer(Protocol):
    """Whole rows out (an export) and in (an import), ids kept where they are free."""

    def export_rows(self) -> AbstractContextManager[ExportRows]:
        """A consistent snapshot to read from while the context is open; writers are not blocked meanwhile, but
        a purge waits for it."""
        ...

    def import_sessions(self, rows: Sequence[SessionRow]) -> tuple[list[int], int]:
        """Store these sessions, each under its own id where free (else a new id); a session already stored with
        the same id, start time and client name is matched, not copied. (Their ids here in order, how many were
        matched.) Ids handed out later never collide with the ones kept."""
        ...

    def import_memories(self, rows: Sequence[StoredMemory]) -> list[int]:
        """Store these memories whole (and their use records), each under its wanted id where free (else a new
        one, also when two rows want the same id); their ids here, in order. The caller has checked that none
        duplicates a stored memory; a store several servers write raises ``StoredMeanwhileError`` (and writes
        nothing) when another stored one meanwhile. Ids handed out later never collide with the ones kept."""
        ...

    def import_links(self, rows: Sequence[Link]) -> set[tuple[int, int]]:
        """Store the links whose ends both exist and which are not stored yet (a stored link is left as it is);
        the (source, target) pairs added."""
        ...


class Lifecycle(Protocol):
    """Closing, durability, the file's rewrite, key/value meta and counts."""

    def close(self) -> None:
        """Make everything durable and release the store; nothing may be called after it. Never raises for a disk
        fault (the change log is replayed at the next open)."""
        ...

    def checkpoint(self) -> None:
        """Fold the change log into the main store, so no deleted text lingers in the log."""
        ...

    def purge(self) -> tuple[int, int]:
        """Rewrite the store so deleted rows leave no bytes behind and clear ``PURGE_DUE``; (bytes before, bytes
        after). A refused rewrite raises ``StorageFaultError`` and leaves the store whole and ``PURGE_DUE`` set."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Held by one caller at a time among every process using the store (a consolidation pass must not
        overlap another server's); waits until it is free."""
        ...

    def get_meta(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any."""
        ...

    def count(self) -> int:
        """How many memories are stored."""
        ...

    def project_counts(self) -> dict[str, int]:
        """{project: how many memories} for every project with at least one."""
        ...

    def counts(self) -> Counts:
        """Memories and links per tier, links per kind (only non-zero entries)."""
        ...


class ChangeLog(Protocol):
    """Changes in commit order, for caches beside a database that several servers write (storage.postgres). A
    store one process writes alone may log nothing: its one service sees every change it makes."""

    def change_head(self) -> int:
        """The change log's newest point (0 when it is empty or not kept)."""
        ...

    def changes(self, after: int) -> Changes:
        """Everything committed after point ``after``, up to the returned head; every change of a transaction
        or none of it. ``complete`` is False when :meth:`trim_changes` dropped some of it."""
        ...

    def trim_changes(self, keep: int) -> int:
        """Drop all but the newest ``keep`` changes (the newest always stays, so the head never goes back); how
        many went. A reader behind what went is told so (``Changes.complete``) and reloads its caches."""
        ...


class MemoryStore(MemoryRows, DocumentRows, SessionRows, LinkRows, UseRows, Transfer, Lifecycle, ChangeLog, Protocol):
    """Everything the service calls on a store: what ``Core`` holds."""
