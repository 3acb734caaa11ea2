import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hebbian_memory.retrieval.lexical import BM25Index, FieldSpec
from hebbian_memory.retrieval.text import terms


def test_terms_are_stemmed_lowercased_and_drop_stopwords() -> None:
    assert terms("The Cats were RUNNING to Caroline's house") == ["cat", "run", "carolin", "hous"]


def test_search_matches_word_forms_and_ranks_rarer_terms_higher() -> None:
    index = BM25Index()
    index.add(1, {"content": "I love hiking in the mountains"})
    index.add(2, {"content": "Mountains of paperwork on my desk"})
    index.add(3, {"content": "We hiked a trail last weekend and hiked again today"})
    hits = index.search("hikes", 10)
    assert [i for i, _ in hits] == [3, 1]
    assert hits[0][1] > hits[1][1] > 0


def test_removed_memories_are_never_returned() -> None:
    index = BM25Index()
    index.add(1, {"content": "secret launch code"})
    index.add(2, {"content": "launch party on friday"})
    index.remove(1)
    assert [i for i, _ in index.search("secret launch", 10)] == [2]
    assert 1 not in index
    assert len(index) == 1


def test_only_restricts_the_candidates() -> None:
    index = BM25Index()
    for i in range(1, 6):
        index.add(i, {"content": f"note {i} about apples"})
    assert {i for i, _ in index.search("apples", 10, only=[2, 4, 99])} == {2, 4}


def test_fields_are_weighted() -> None:
    index = BM25Index({"content": FieldSpec(weight=1.0), "context": FieldSpec(weight=0.2)})
    index.add(1, {"content": "the budget meeting", "context": ""})
    index.add(2, {"content": "lunch", "context": "before the budget meeting"})
    assert [i for i, _ in index.search("budget", 10)] == [1, 2]
    with pytest.raises(ValueError, match="unknown lexical fields"):
        index.add(3, {"title": "x"})


WORDS = st.sampled_from(["apple", "banana", "cherry", "date", "elder", "fig", "grape", "kiwi"])
DOCS = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(DOCS, min_size=1, max_size=40),
    removals=st.lists(st.integers(0, 39), max_size=40),
    query=st.lists(WORDS, min_size=1, max_size=3).map(" ".join),
)
def test_an_index_after_adds_removes_and_compaction_scores_like_a_fresh_one(
    docs: list[str], removals: list[int], query: str
) -> None:
    churned = BM25Index()
    for i, doc in enumerate(docs):
        churned.add(i + 1, {"content": doc})
    removed = {r + 1 for r in removals if r < len(docs)}
    for memory_id in removed:
        churned.remove(memory_id)
    churned._compact_locked()  # pyright: ignore[reportPrivateUsage] -- compaction must not change any score
    fresh = BM25Index()
    for i, doc in enumerate(docs):
        if i + 1 not in removed:
            fresh.add(i + 1, {"content": doc})
    got, want = churned.search(query, 50), fresh.search(query, 50)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["red apples", "green apples", "the apple's core", "", "pears and apples"]),
            st.sampled_from(["", "red apples", "a talk about pears"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_indexing_many_at_once_scores_exactly_as_one_by_one(docs: list[tuple[str, str]]) -> None:
    """add_many analyses each distinct text once; shared texts must not change what is indexed."""
    fields = {"content": FieldSpec(), "previous": FieldSpec(weight=0.5)}
    one, many = BM25Index(fields), BM25Index(fields)
    rows = [(i, {"content": content, "previous": previous}) for i, (content, previous) in enumerate(docs)]
    for memory_id, row in rows:
        one.add(memory_id, row)
    many.add_many(rows)
    for query in ("apples", "red pears", "core"):
        assert many.search(query, 20) == one.search(query, 20)


def test_terms_one_memory_alone_holds_are_found_through_growth_removal_and_compaction() -> None:
    """A term held by one memory is kept packed in one int; it must score like any other term when a second
    memory gets it, when its memory moves in a compaction, and when a field is filled later."""
    fields = {"content": FieldSpec(), "next": FieldSpec(weight=0.5)}
    index = BM25Index(fields)
    for i in range(1, 41):
        index.add(i, {"content": f"note {i} about zebra{i}"})
    for i in range(1, 31):  # slots of the rest move in the compaction below
        index.remove(i)
    index.fill_field(35, "next", "zebra40 again")  # zebra40 now held twice, in two fields
    index._compact_locked()  # pyright: ignore[reportPrivateUsage]
    index.add(41, {"content": "zebra33 seen once more"})  # zebra33 grows from one posting to two

    fresh = BM25Index(fields)
    for i in range(31, 41):
        fresh.add(i, {"content": f"note {i} about zebra{i}", **({"next": "zebra40 again"} if i == 35 else {})})
    fresh.add(41, {"content": "zebra33 seen once more"})
    for query in ("zebra31", "zebra33", "zebra40", "zebra5", "note zebra38"):
        got, want = index.search(query, 10), fresh.search(query, 10)
        assert [i for i, _ in got] == [i for i, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5), query
    assert sorted(i for i, _ in index.search("zebra33", 10)) == [33, 41]
    assert index.search("zebra5", 10) == []
