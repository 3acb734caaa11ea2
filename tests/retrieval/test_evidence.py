"""The pieces the fusion and the relevance stand on: the residual of a query, the keyword share's scale, and
which memories are dialog turns."""

import pytest

from hebbian_memory.retrieval import documents
from hebbian_memory.retrieval.evidence import residual
from hebbian_memory.retrieval.lexical import BM25Index
from hebbian_memory.retrieval.text import terms
from hebbian_memory.storage import DocumentRow
from tests.service.test_service import START


def held(text: str) -> frozenset[str]:
    return frozenset(terms(text))


def test_the_residual_is_the_query_without_the_words_the_memory_holds() -> None:
    memory = held("batch-02.internal runs invoice generation on the 1st of each month.")
    assert residual("Where is the code for the invoicing backend hosted?", memory) == (
        "Where is the code for the  backend hosted?"
    )
    # Word forms count as one word (stems); stopwords stay: they are the question's frame, not its topic.
    rest = residual("When are invoices generated each quarter?", memory)
    assert rest is not None
    assert rest.split() == ["When", "are", "each", "quarter?"]
    assert residual("Who is my dentist?", memory) is None, "nothing shared: the cosine stands as it is"
    assert residual("invoice generation", memory) is None, "everything shared: nothing is left to compare"


def test_the_residual_keeps_words_the_memory_holds_only_in_part() -> None:
    assert residual("billing-api deploys", held("billing runs on bill-prod-02")) == "-api deploys"


def test_the_full_score_is_what_a_memory_holding_every_query_term_once_would_score() -> None:
    index = BM25Index()
    index.add_many([(i, {"content": f"note {i} about the ledger"}) for i in range(9)])
    index.add(100, {"content": "zanzibar quokka"})
    full = index.full_score("zanzibar quokka")
    ((found, score),) = index.search("zanzibar quokka", 1)
    assert found == 100
    assert score == pytest.approx(full, rel=0.15)  # length normalisation moves it a little, not the level
    # A common word is a small share of a query that also holds a rare one; a word no memory holds counts as
    # the rarest, so a query about something never stored is never fully matched.
    ledger = dict(index.search("ledger zanzibar", 20))
    assert ledger[0] / index.full_score("ledger zanzibar") < 0.2
    assert index.full_score("quokka platypus") > 1.9 * index.full_score("quokka")


def doc(content: str, previous: str | None = None, following: str | None = None, **metadata: str) -> DocumentRow:
    return DocumentRow(1, content, START, dict(metadata), previous, following)


@pytest.mark.parametrize(
    ("row", "turn"),
    [
        (doc("Caroline: I went to the support group.", previous="Melanie: How was your week?"), True),
        (doc("Caroline: Hey Mel!", following="Melanie: Hi Caroline!"), True),  # a session's first turn
        (doc("Caroline: Hey Mel!", speaker="Caroline"), True),
        (doc("Bug: duplicate webhooks when a retry raced the first attempt."), False),  # a lone label is a note
        (doc("Bug: duplicate webhooks.", previous="The dentist is Dr Hughes."), False),
        (doc("Caroline went to the support group.", previous="Melanie: How was your week?"), False),
    ],
)
def test_a_dialog_turn_is_a_labelled_memory_among_labelled_ones(row: DocumentRow, turn: bool) -> None:
    assert documents.is_turn(row, ["speaker"]) is turn


def test_a_turns_speaker_label_is_one_of_its_entities() -> None:
    assert documents.speaker("Mary Ann Lee: hello there") == "Mary Ann Lee"
    assert documents.entities({}, ["speaker"], True, "Caroline: hi") == {"caroline"}
    assert documents.entities({}, ["speaker"], False, "Caroline: hi") == frozenset()
