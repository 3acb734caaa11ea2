"""How a memory looks to the keyword index: its text, its episode (the memories stored just before and after
it in the same session), its event date in words (with the dates its relative time words name), and chosen
metadata; plus the entities it names and the kinds of answer it holds (a time, a quantity, a title)."""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hebbian_memory.config import ANSWER_KIND_NAMES, LexicalSettings
from hebbian_memory.retrieval import timewords
from hebbian_memory.retrieval.lexical import FieldSpec
from hebbian_memory.retrieval.text import words
from hebbian_memory.storage import DocumentRow

__all__ = [
    "ANSWER_KINDS",
    "answer_kinds",
    "asked_kind",
    "date_words",
    "entities",
    "field_specs",
    "fields",
    "is_turn",
    "kinds_mask",
    "metadata_text",
    "speaker",
]

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


def date_words(when: datetime, text: str) -> str:
    """'8 May 2023 Monday': how people name dates in questions; then the days, months and years that ``text``'s
    relative time words name from there ("yesterday": '7 May 2023 Sunday', "last month": 'April 2023')."""
    return " ".join([timewords.day_words(when.date()), *timewords.resolve(text, when.date())])


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
        DATE: date_words(doc.event_time, doc.content),
        METADATA: metadata_text(doc.metadata, metadata_keys),
    }
    return {name: text for name, text in candidates.items() if name in specs}


def entities(metadata: Mapping[str, Any], keys: Sequence[str], turn: bool, text: str) -> frozenset[str]:
    """Lower-cased words of the entity-valued metadata (e.g. the speaker's name), and of a turn's speaker label."""
    label = speaker(text) if turn else None
    return frozenset(words(metadata_text(metadata, keys) + " " + (label or "")))


# A dialog turn as a plain client stores it: "Caroline: ...", one to three capitalised words and a colon.
_SPEAKER = re.compile(r"\s*([A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,2}):\s+\S")


def speaker(text: str) -> str | None:
    """The speaker label a text starts with ("Caroline" in "Caroline: hi"), if any."""
    found = _SPEAKER.match(text)
    return found.group(1) if found else None


def is_turn(doc: DocumentRow, entity_keys: Sequence[str]) -> bool:
    """Whether a memory is a turn of a dialog: its text starts with a speaker label, and either its metadata
    names a speaker or a memory next to it in its session is labelled too (a lone "Bug: ..." is a note)."""
    if speaker(doc.content) is None:
        return False
    named = any(isinstance(doc.metadata.get(key), str) for key in entity_keys)
    return named or any(text is not None and speaker(text) is not None for text in (doc.previous, doc.next))


# What a question asks for, and what a memory's text holds: a time, a quantity, a title or name; and whether
# the memory is itself a question (it asks rather than tells).
# TURN is not read from the text alone: see is_turn.
TIME, QUANTITY, TITLE, QUESTION, TURN = 1, 2, 4, 8, 16
ANSWER_KINDS: dict[str, int] = dict(zip(ANSWER_KIND_NAMES, (TIME, QUANTITY, TITLE), strict=True))

# Words that place an event in time (English). Broad on purpose: a turn that says "last weekend" or "just
# finished" is far likelier to answer a "when" question (LoCoMo dev: 84% of the evidence turns of its 150 "when"
# questions do, against 34% of the other turns in their top 5). "may" counts only as "May" (the verb is lower-case
# unless it starts a sentence). Looked up in a set of the text's words: one regex of alternatives per kind cost
# 10-16 us a text, too much for a 100,000-memory rebuild.
_TIME_WORDS = frozenset(
    """yesterday today tonight tomorrow ago last next recently earlier later soon since just week weekend month year
    morning afternoon evening night monday tuesday wednesday thursday friday saturday sunday january february
    march april june july august september october november december""".split()  # noqa: SIM905 -- reads better
)
_QUANTITY_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand
    dozen once twice couple few several""".split()  # noqa: SIM905 -- a word list reads better as text
)
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?\b")  # 3/14, 14.3.2023
_MAY = re.compile(r"\bMay\b")
# A quoted phrase, or two or more capitalised words together that do not start the text or a sentence:
# "Becoming Nicole", Amy Ellis Nutt, The Lord of the Rings.
_TITLE = re.compile(
    r'["\u201c][^"\u201d]{2,}["\u201d]|(?<![.!?:] )(?<!^)\b[A-Z][a-z]+(?: (?:of |the |and )*[A-Z][a-z]+)+'
)
_ASKS = (
    (
        TIME,
        re.compile(
            r"\bwhen\b|\b(?:what|which)\s+(?:date|day|year|month|time|week|season)\b|\bhow\s+long\s+ago\b", re.I
        ),
    ),
    (QUANTITY, re.compile(r"\bhow\s+(?:many|much|often|long)\b", re.I)),
    (
        TITLE,
        re.compile(
            r"\b(?:what|which)\s+(?:\w+\s+)?(?:book|movie|film|song|show|game|band|album|novel|series|artist|author"
            r"|title|name)s?\b|\bwhat\s+is\s+the\s+name\b",
            re.I,
        ),
    ),
)


def kinds_mask(names: Sequence[str]) -> int:
    """The bits of the named answer kinds ("time", "quantity", "title")."""
    mask = 0
    for name in names:
        mask |= ANSWER_KINDS[name]
    return mask


def answer_kinds(text: str) -> int:
    """The kinds of answer ``text`` holds (TIME | QUANTITY | TITLE bits): "last week", "three", "Little Women";
    QUESTION when it ends in a question mark."""
    tokens = set(words(text))
    numbers = [t for t in tokens if t.isdigit()]
    timed = bool(tokens & _TIME_WORDS) or any(len(t) == 4 and "1800" <= t < "2100" for t in numbers)
    timed = timed or ("May" in text and _MAY.search(text) is not None)
    timed = timed or (bool(numbers) and _NUMERIC_DATE.search(text) is not None)
    kinds = TIME if timed else 0
    kinds |= QUANTITY if numbers or tokens & _QUANTITY_WORDS else 0
    kinds |= TITLE if _TITLE.search(text) else 0
    return kinds | (QUESTION if text.rstrip().endswith("?") else 0)


def asked_kind(query: str) -> int:
    """The kind of answer ``query`` asks for, or 0: "When did ..." a time, "How many ..." a quantity, "What book
    ..." a title. The first that matches decides ("how long ago" asks for a time, "how long" for a quantity)."""
    for kind, pattern in _ASKS:
        if pattern.search(query):
            return kind
    return 0
