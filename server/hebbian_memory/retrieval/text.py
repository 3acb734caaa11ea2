"""Text analysis for the lexical index: lower-case word tokens, English stopwords out, Snowball stems."""

import re
import threading
from collections.abc import Sequence
from typing import Protocol, cast

import Stemmer

__all__ = ["STOPWORDS", "terms", "words"]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# A short list: common function words only, so that names and content words always count.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t don ll re ve d m
    """.split()  # noqa: SIM905 -- a word list reads better as text
)

_local = threading.local()


class _Stemmer(Protocol):
    def stemWords(self, words: Sequence[str]) -> list[str]: ...


def _stemmer() -> _Stemmer:
    # Stemmer objects are not thread-safe; one per thread costs a few microseconds once.
    stemmer: _Stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = cast(_Stemmer, Stemmer.Stemmer("english"))  # pyright: ignore[reportUnknownMemberType] -- untyped C module
        _local.stemmer = stemmer
    return stemmer


def words(text: str) -> list[str]:
    """Lower-case word tokens, apostrophes folded ("Caroline's" -> "caroline")."""
    return [w.split("'")[0] if "'" in w else w for w in _WORD.findall(text.lower())]


def terms(text: str) -> list[str]:
    """Index terms of a text: stopwords dropped, stems kept, order and repeats preserved."""
    return _stemmer().stemWords([w for w in words(text) if w not in STOPWORDS])
