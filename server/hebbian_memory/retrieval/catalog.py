"""Catalog: what the service keeps in memory about the stored memories besides their vectors.

The keyword index, the per-memory maps ranking reads (entities, answer kinds, previous memory), memories per
project, and the last memory of each live session (where its episode continues). Caches: all of it is built
again from the database at start. Callers hold the service's write lock while they change it.
"""

from collections.abc import Sequence

from hebbian_memory.config import Settings
from hebbian_memory.retrieval import documents
from hebbian_memory.retrieval.idmap import IdBytes, IdMap
from hebbian_memory.retrieval.lexical import BM25Index, LexicalIndex
from hebbian_memory.storage import DocumentRow, DocumentRows, NewMemory

__all__ = ["Catalog"]


class Catalog:
    """The keyword index and the per-memory and per-session maps kept beside it."""

    def __init__(self, settings: Settings, store: DocumentRows) -> None:
        self._store = store
        self._metadata_keys = settings.lexical.metadata_keys
        self._entity_keys = settings.recall.entity_keys
        self.fields = documents.field_specs(settings.lexical)
        self.lexical: LexicalIndex = BM25Index(self.fields, k1=settings.lexical.k1)
        self.entities: dict[int, frozenset[str]] = {}
        self._entity_sets: dict[frozenset[str], frozenset[str]] = {}
        self.previous_of = IdMap()  # memory id -> the memory before it in its session
        self.answer_kinds = IdBytes()  # memory id -> the kinds of answer its text holds (documents.TIME, ...)
        # The answer kinds recall tells apart (its Ranker's kinds_on); the service sets it once the Ranker exists.
        self.kinds_on = 0
        # The last memory stored in each live session, whose "next" context the following memory fills.
        self._episode_tail: dict[int, tuple[int, str]] = {}
        # Sessions started here have no memories yet; any other (one a previous owner started) may have some.
        self._fresh_sessions: set[int] = set()
        self._project_counts: dict[str, int] = {}  # memories per project: recall skips the filter if all are in one
        self.writes = 0  # bumped under the write lock whenever memories are stored or deleted

    def index_documents(self, docs: Sequence[DocumentRow]) -> None:
        """(Re-)index memories in the keyword index, the entity map and the answer kinds."""
        turns = [documents.is_turn(doc, self._entity_keys) for doc in docs]
        self.lexical.add_many([(doc.id, documents.fields(doc, self.fields, self._metadata_keys)) for doc in docs])
        for doc, turn in zip(docs, turns, strict=True):
            found = documents.entities(doc.metadata, self._entity_keys, turn, doc.content)
            if found:
                # Shared: a store has few speakers, and a set per memory took 20 MB at 100,000 memories.
                self.entities[doc.id] = self._entity_sets.setdefault(found, found)
            kinds = documents.answer_kinds(doc.content) & self.kinds_on
            self.answer_kinds[doc.id] = kinds | (documents.TURN if turn else 0)
            if doc.previous_id is not None:
                self.previous_of[doc.id] = doc.previous_id
            else:
                self.previous_of.pop(doc.id)

    def session_started(self, session_id: int) -> None:
        self._fresh_sessions.add(session_id)

    def tail(self, session_id: int | None) -> tuple[int, str] | None:
        """The last memory of a session, where its episode continues (from the database for a session that
        a previous owner process started)."""
        if session_id is None:
            return None
        if session_id not in self._episode_tail and session_id not in self._fresh_sessions:
            self._fresh_sessions.add(session_id)
            last = self._store.last_of_session(session_id, 2**62)
            if last is not None:
                self._episode_tail[session_id] = last
        return self._episode_tail.get(session_id)

    def index_in_episode(self, memory_id: int, row: NewMemory, session_id: int | None) -> None:
        """Keyword-index a new memory with the previous one of its session as context, and vice versa."""
        previous = self._episode_tail.get(session_id) if session_id is not None else None
        doc = DocumentRow(
            memory_id,
            row.content,
            row.event_time,
            row.metadata,
            previous[1] if previous else None,
            None,
            previous[0] if previous else None,
        )
        self.index_documents([doc])
        if previous is not None:
            if documents.NEXT in self.fields:
                self.lexical.fill_field(previous[0], documents.NEXT, row.content)
            self._mark_turn(previous[0], previous[1], row.content)
        if session_id is not None:
            self._episode_tail[session_id] = (memory_id, row.content)

    def _mark_turn(self, memory_id: int, content: str, following: str) -> None:
        """A session's first labelled memory becomes a dialog turn once a labelled one follows it."""
        kinds = self.answer_kinds.get(memory_id)
        if kinds & documents.TURN or documents.speaker(content) is None or documents.speaker(following) is None:
            return
        self.answer_kinds[memory_id] = kinds | documents.TURN
        found = self.entities.get(memory_id, frozenset()) | documents.entities({}, (), True, content)
        self.entities[memory_id] = self._entity_sets.setdefault(found, found)

    def forget(self, doomed: Sequence[int]) -> None:
        """Drop forgotten memories from the keyword index and the maps; an episode whose last memory went
        continues without a "previous" context."""
        for memory_id in doomed:
            self.lexical.remove(memory_id)
            self.entities.pop(memory_id, None)
            self.answer_kinds.pop(memory_id)
            self.previous_of.pop(memory_id)
        gone = set(doomed)
        for session_id, (tail_id, _) in list(self._episode_tail.items()):
            if tail_id in gone:
                del self._episode_tail[session_id]

    def count(self, project: str, added: int) -> None:
        self._project_counts[project] = self._project_counts.get(project, 0) + added

    def recount(self, counts: dict[str, int]) -> None:
        self._project_counts = counts

    def projects(self) -> dict[str, int]:
        """Memories per project (a copy)."""
        return dict(self._project_counts)

    def project_filter(self, project: str | None) -> str | None:
        """The project to filter on, or None when no filter is needed (every memory is in it)."""
        if project is None or self._project_counts.get(project, 0) == sum(self._project_counts.values()) > 0:
            return None
        return project
