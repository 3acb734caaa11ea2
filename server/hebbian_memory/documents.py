"""How a memory looks to the keyword index: its text, its episode (the memories stored just before and after
it in the same session), its event date in words, and chosen metadata; plus the entities it names."""

import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from hebbian_memory.config import LexicalSettings
from hebbian_memory.lexical import FieldSpec
from hebbian_memory.storage import DocumentRow
from hebbian_memory.text import words

CONTENT, PREVIOUS, NEXT, DATE, METADATA = "content", "previous", "next", "date", "metadata"


def field_specs(s: LexicalSettings) -> dict[str, FieldSpec]:
    """BM25F fields with their weights; a field with weight 0 is left out entirely."""
    weights = {
        CONTENT: s.content_weight,
        PREVIOUS: s.previous_weight,
        NEXT: s.next_weight,
        DATE: s.date_weight,
        METADATA: s.metadata_weight,
    }
    return {name: FieldSpec(weight=w, b=s.b) for name, w in weights.items() if w > 0 or name == CONTENT}


def date_words(when: datetime) -> str:
    """'8 May 2023 Monday': how people name dates in questions."""
    return _day_words(when.date())


@functools.lru_cache(maxsize=4096)  # memories share days: a rebuild formats each day once
def _day_words(day: date) -> str:
    return f"{day.day} {day:%B} {day.year} {day:%A}"


def metadata_text(metadata: Mapping[str, Any], keys: Sequence[str]) -> str:
    parts: list[str] = []
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))  # pyright: ignore[reportUnknownVariableType]
    return " ".join(parts)


def fields(doc: DocumentRow, specs: Mapping[str, FieldSpec], metadata_keys: Sequence[str]) -> dict[str, str]:
    candidates = {
        CONTENT: doc.content,
        PREVIOUS: doc.previous or "",
        NEXT: doc.next or "",
        DATE: date_words(doc.event_time),
        METADATA: metadata_text(doc.metadata, metadata_keys),
    }
    return {name: text for name, text in candidates.items() if name in specs}


def entities(metadata: Mapping[str, Any], keys: Sequence[str]) -> frozenset[str]:
    """Lower-cased words of the entity-valued metadata (e.g. the speaker's name)."""
    return frozenset(words(metadata_text(metadata, keys)))
