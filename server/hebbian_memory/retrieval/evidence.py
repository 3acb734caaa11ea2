"""How much of a query a memory answers beyond the words it repeats.

A memory that shares a word with a question ("invoicing") is pulled towards it by that word alone, in its
cosine as much as in its keyword score, whether or not it says anything about the rest of the question ("where
is the code for the invoicing backend hosted?"). Embedding the question without the shared words (the
residual) and comparing that with the memory separates the two: a memory that answers still matches what is
left; one that only shares a topic word does not.
"""

import re

from hebbian_memory.retrieval.text import terms

__all__ = ["residual"]

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[\W_]+", re.UNICODE)


def residual(query: str, memory_terms: frozenset[str]) -> str | None:
    """``query`` without its words whose index terms the memory holds; None when it shares none of them, and
    also when it shares all of them (nothing of the question is left to compare: the memory repeats it)."""
    kept: list[str] = []
    dropped = False
    for token in _TOKEN.findall(query):
        found = terms(token) if token[0].isalnum() else []
        if found and memory_terms.issuperset(found):
            dropped = True
            continue
        kept.append(token)
    if not dropped:
        return None
    rest = "".join(kept)
    return rest if terms(rest) else None
