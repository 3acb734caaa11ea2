"""Retrieval behaviour with the real model: each mechanism finds what the others would miss."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.errors import InvalidInputError
from hebbian_memory.models import MemoryInput
from hebbian_memory.retrieval import documents
from hebbian_memory.retrieval.ranking import estimate_tokens
from hebbian_memory.retrieval.text import terms
from hebbian_memory.service.memory import MemoryService
from tests.backends import OpenStore

DISTRACTORS = [
    "We watched a documentary about deep sea creatures on Sunday.",
    "The printer on the third floor keeps jamming.",
    "Grandma's apple pie recipe needs two cups of flour.",
    "The team retro is moved to Wednesday afternoon.",
    "I finally fixed the squeaky door hinge in the hallway.",
    "Our flight to Oslo was delayed by three hours.",
    "The dentist appointment is at 9am next Tuesday.",
    "She started learning the cello last autumn.",
]


@pytest.fixture
def service(settings: Settings, real_embedder: OnnxEmbedder, open_store: OpenStore) -> Iterator[MemoryService]:
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    svc = MemoryService(settings, open_store(settings.data_dir / "memory.duckdb", clock.now()), real_embedder, clock)
    svc.warm_up()
    yield svc
    svc.close()


def top_ids(service: MemoryService, query: str, k: int = 3) -> list[int]:
    return [h.id for h in service.recall(query, k=k).hits]


def test_a_keyword_only_fact_and_a_paraphrase_only_fact_are_both_found(service: MemoryService) -> None:
    for text in DISTRACTORS:
        service.remember(text)
    code = service.remember("The garage door code is QX-7731.").id
    pet = service.remember("I adopted a golden retriever puppy named Biscuit.").id
    paraphrase = "Which animal lives with me?"
    assert not set(terms(paraphrase)) & set(terms("I adopted a golden retriever puppy named Biscuit."))
    assert top_ids(service, "QX-7731")[0] == code
    assert top_ids(service, paraphrase)[0] == pet


def test_episodic_context_finds_an_answer_that_only_its_question_names(service: MemoryService) -> None:
    for text in DISTRACTORS:
        service.remember(text)
    turns = ["What instrument did your sister pick up?", "Yes, a big wooden one that you play sitting down."]
    question, answer = (r.id for r in service.remember_many([MemoryInput(content=t) for t in turns], session_id=1))
    hits = service.recall("Which instrument did my sister pick up?", k=2).hits
    assert [h.id for h in hits] == [question, answer], "the answer is found through its question's words"


@pytest.mark.parametrize("share", [0.5, 0.0])
def test_a_reply_is_found_by_the_meaning_of_the_question_it_answers(
    data_dir: Path, real_embedder: OnnxEmbedder, share: float, open_store: OpenStore
) -> None:
    """The answer shares no word and little meaning with the query; only its episode (the question before it)
    does. Nearby distractors about vehicles outrank it on its own vector, so episode_share=0 must lose it."""
    overrides = {
        "data_dir": str(data_dir),
        "recall.episode_share": share,
        "plasticity.spread_weight": 0.0,
        "recall.question_penalty": 0.0,
    }
    tuned = load_settings(env={}, overrides=overrides)
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    service = MemoryService(tuned, open_store(tuned.data_dir / "memory.duckdb", clock.now()), real_embedder, clock)
    service.warm_up()
    try:
        suv, van = (
            "Dad keeps talking about buying an electric SUV someday.",
            "We rented a minivan for the family road trip.",
        )
        for text in [*DISTRACTORS, suv, van]:
            service.remember(text)
        turns = ["Did your brother ever get a new car?", "Yes, a red convertible, he loves it."]
        question, answer = (r.id for r in service.remember_many([MemoryInput(content=t) for t in turns], 1))
        query = "What vehicle did my sibling purchase?"
        assert not set(terms(query)) & set(terms(" ".join(turns)))
        found = top_ids(service, query, k=2) == [question, answer]
        assert found is (share > 0)
    finally:
        service.close()


def episode_service(open_store: OpenStore, data_dir: Path, embedder: OnnxEmbedder, **settings: float) -> MemoryService:
    """A service with the lexical context fields off, so only the mechanisms under test see episodes."""
    overrides: dict[str, object] = {"data_dir": str(data_dir), "lexical.previous_weight": 0, "lexical.next_weight": 0}
    overrides |= {key.replace("__", "."): value for key, value in settings.items()}
    tuned = load_settings(env={}, overrides=overrides)
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    service = MemoryService(tuned, open_store(tuned.data_dir / "memory.duckdb", clock.now()), embedder, clock)
    service.warm_up()
    return service


@pytest.mark.parametrize("spread", [0.3, 0.0])
def test_the_turn_after_the_best_match_is_brought_along_its_temporal_link(
    data_dir: Path, real_embedder: OnnxEmbedder, spread: float, open_store: OpenStore
) -> None:
    """The answer comes in the turn after the one the question matches, and shares no word with the query;
    memories of other gatherings are closer to the query on their own, unless its neighbour passes it a share."""
    service = episode_service(
        open_store, data_dir, real_embedder, recall__episode_share=0.0, plasticity__spread_weight=spread
    )
    try:
        gatherings = ["The festival downtown was packed with families.", "We played board games at the party."]
        for text in [*DISTRACTORS, *gatherings]:
            service.remember(text)
        turns = ["Ana: Last weekend I had a picnic with friends from church.", "Ana: Charades and a scavenger hunt!"]
        said = [MemoryInput(content=t, metadata={"speaker": "Ana"}) for t in turns]  # a dialog: see is_turn
        matched, answer = (r.id for r in service.remember_many(said, 1))
        query = "What happened at the church picnic?"
        assert not set(terms(query)) & set(terms(turns[1]))
        hits = service.recall(query, k=3, min_relevance=0).hits
        assert hits[0].id == matched
        assert hits[0].reason == "direct"
        linked = [h for h in hits if h.id == answer]
        assert bool(linked) is (spread > 0)
        if linked:
            assert linked[0].via is not None
            assert (linked[0].via.memory_id, linked[0].via.kind) == (matched, "temporal")
            # What a link brings is as relevant as what it is linked to, times the link's weight.
            assert linked[0].relevance == pytest.approx(hits[0].relevance * linked[0].via.weight, abs=1e-3)
    finally:
        service.close()


def test_near_duplicates_are_left_out_so_other_hits_get_their_place(
    data_dir: Path, real_embedder: OnnxEmbedder, open_store: OpenStore
) -> None:
    for threshold, expected_tea in ((0.97, 1), (1.0, 2)):
        service = episode_service(
            open_store, data_dir / str(threshold), real_embedder, recall__duplicate_cosine=threshold
        )
        try:
            tea = {
                service.remember(t).id for t in ("I drink green tea every morning.", "I drink green tea every morning!")
            }
            coffee = service.remember("Coffee after lunch gives me a headache.").id
            hits = top_ids(service, "What do I drink in the morning?", k=2)
            assert len(set(hits) & tea) == expected_tea
            assert (coffee in hits) is (expected_tea == 1)
        finally:
            service.close()


def test_a_token_budget_packs_the_best_hits_that_fit(service: MemoryService) -> None:
    long_note = "Tomato plants need deep watering twice a week in summer; " * 8  # about 120 tokens
    long_id = service.remember(long_note).id
    short = [service.remember(t).id for t in ("Tomatoes like full sun.", "Tomato seedlings go out in May.")]
    service.remember("The car needs new tyres.")
    unbounded = service.recall("how to grow tomatoes", k=3, min_relevance=0)
    assert long_id in [h.id for h in unbounded.hits]
    packed = service.recall("how to grow tomatoes", k=3, token_budget=14, min_relevance=0)
    assert {h.id for h in packed.hits} == set(short), "the long note does not fit; the smaller ones do"
    assert packed.tokens <= 14
    assert packed.tokens == sum(estimate_tokens(h.content) for h in packed.hits)
    with pytest.raises(InvalidInputError, match="token_budget"):
        service.recall("tomatoes", token_budget=0)


def test_naming_a_speaker_favours_what_that_speaker_said(service: MemoryService) -> None:
    for text in DISTRACTORS:
        service.remember(text, metadata={"speaker": "Caroline"})
    service.remember("I love hiking in the hills.", metadata={"speaker": "Caroline"})
    melanie = service.remember("I love hiking in the hills!", metadata={"speaker": "Melanie"}).id
    assert top_ids(service, "Where does Melanie love hiking?", k=1) == [melanie]


@pytest.mark.parametrize("boost", [0.3, 0.0])
@pytest.mark.parametrize(
    ("plain", "holding", "other_question", "asking"),
    [
        (
            "Jon went to the pottery studio and made a bowl.",
            "Jon: I tried pottery last Saturday, so relaxing!",
            "What did Jon make at the pottery class?",
            "When did Jon go to the pottery class?",
        ),
        (
            "Maria adopted cats from the shelter and loves them.",
            "Maria: We took in three cats from the shelter!",
            "Where did Maria adopt her cats from?",
            "How many cats did Maria adopt from the shelter?",
        ),
        (
            "Tim keeps reading that fantasy book series about dragons every night.",
            'Tim: I keep reading "The Wheel of Time", a fantasy series with dragons!',
            "Why does Tim keep reading the fantasy book series about dragons?",
            "Which book series about dragons is Tim reading?",
        ),
    ],
)
def test_a_question_favours_memories_that_hold_the_kind_of_answer_it_asks_for(
    data_dir: Path,
    real_embedder: OnnxEmbedder,
    boost: float,
    open_store: OpenStore,
    plain: str,
    holding: str,
    other_question: str,
    asking: str,
) -> None:
    """Both turns tell of the same thing; the plain one matches the query better on its own, the other holds
    what the question asks for (a time, a quantity, a title). Only that question lifts it, only with the boost
    on; a forgotten memory's kinds go with it."""
    service = episode_service(
        open_store, data_dir, real_embedder, recall__answer_boost=boost, plasticity__spread_weight=0.0
    )
    try:
        for text in DISTRACTORS:
            service.remember(text)
        # Both turns of a dialog (see documents.is_turn): the boosts are for turns.
        speaker = {"speaker": holding.split(":", maxsplit=1)[0]}
        plain_id = service.remember(f"{speaker['speaker']}: {plain}", metadata=speaker).id
        holding_id = service.remember(holding, metadata=speaker).id
        assert top_ids(service, other_question, k=2) == [plain_id, holding_id]
        found = top_ids(service, asking, k=2)
        assert found == ([holding_id, plain_id] if boost else [plain_id, holding_id])
        assert service._catalog.answer_kinds.get(holding_id)  # pyright: ignore[reportPrivateUsage]
        service.forget(ids=[holding_id])
        assert not service._catalog.answer_kinds.get(holding_id)  # pyright: ignore[reportPrivateUsage]
    finally:
        service.close()


@pytest.mark.parametrize("penalty", [0.1, 0.0])
def test_a_statement_comes_before_a_question_that_matches_a_little_better(
    data_dir: Path, real_embedder: OnnxEmbedder, penalty: float, open_store: OpenStore
) -> None:
    """A stored question asks rather than tells: with the penalty on, the answer that matches almost as well
    comes first."""
    service = episode_service(
        open_store,
        data_dir,
        real_embedder,
        recall__question_penalty=penalty,
        recall__episode_share=0.0,
        plasticity__spread_weight=0.0,
    )
    try:
        for text in DISTRACTORS:
            service.remember(text)
        asked = service.remember("Which running shoes do you like best for marathons?").id
        told = service.remember("For marathons I like light running shoes.").id
        found = top_ids(service, "Which running shoes does Sam like for marathons?", k=2)
        assert found == ([told, asked] if penalty else [asked, told])
    finally:
        service.close()


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("I went hiking yesterday.", documents.TIME),
        ("We moved here last year.", documents.TIME),
        ("The concert is on Friday night.", documents.TIME),
        ("Her birthday is in May.", documents.TIME),
        ("The meeting moved to 3/14.", documents.TIME | documents.QUANTITY),
        ("I was born in 1994.", documents.TIME | documents.QUANTITY),
        ("I have three kids and a dog.", documents.QUANTITY),
        ('My favourite is "Little Women".', documents.TITLE),
        ("I loved The Lord of the Rings by Tolkien.", documents.TITLE),
        ("You may borrow my bike.", 0),
        ("Did you see the game last night? ", documents.TIME | documents.QUESTION),
        ("What? No way, I loved it.", 0),
        ("Jon: Hey Gina, the bike is blue and fast.", 0),
    ],
)
def test_the_kinds_of_answer_a_text_holds_are_told_apart(text: str, kinds: int) -> None:
    assert documents.answer_kinds(text) == kinds


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("When did Jon open his studio?", documents.TIME),
        ("What year did they marry?", documents.TIME),
        ("How long ago was the trip?", documents.TIME),
        ("How long has she been painting?", documents.QUANTITY),
        ("how many kids does Mel have", documents.QUANTITY),
        ("What book did Melanie read?", documents.TITLE),
        ("What is the name of Nate's turtle?", documents.TITLE),
        ("What did Jon open?", 0),
        ("Where is the studio?", 0),
    ],
)
def test_the_kind_of_answer_a_question_asks_for_is_recognised(query: str, kind: int) -> None:
    assert documents.asked_kind(query) == kind


def test_event_dates_are_searchable_in_words(service: MemoryService) -> None:
    for text in DISTRACTORS:
        service.remember(text, event_time="2023-07-14")
    service.remember("Went to the pottery class.", event_time="2023-07-14")
    may = service.remember("Went to the pottery class!", event_time="2023-05-08T13:56:00Z").id
    assert top_ids(service, "pottery class in May 2023", k=1) == [may]


def test_a_day_named_by_relative_time_words_is_searchable(service: MemoryService) -> None:
    """Said on 16 June, "yesterday" is 15 June: a question about that day finds the memory, though another
    matches the words better and was said nearer to it."""
    for text in DISTRACTORS:
        service.remember(text, event_time="2023-06-16")
    service.remember("Went to the pottery class!", event_time="2023-06-14")
    yesterday = service.remember("Went to the pottery class yesterday, so relaxing.", event_time="2023-06-16").id
    assert top_ids(service, "pottery class on 15 June", k=1) == [yesterday]


def test_relative_time_words_at_the_ends_of_the_calendar_are_stored_and_found(service: MemoryService) -> None:
    early = service.remember("Went out yesterday, 3 days ago and last month.", event_time="0001-01-01").id
    late = service.remember("See you tomorrow, next month and next year.", event_time="9998-12-31").id
    assert set(top_ids(service, "went out yesterday last month", k=2)) == {early, late}
    assert top_ids(service, "see you in January 9999", k=1) == [late]


def test_time_filters_are_exact_at_their_bounds(service: MemoryService) -> None:
    inside = service.remember("Quarterly planning notes", event_time="2024-04-01T00:00:00Z").id
    service.remember("Quarterly planning notes, earlier draft", event_time="2024-03-31T23:59:59Z")
    service.remember("Quarterly planning notes, later draft", event_time="2024-04-01T00:00:01Z")
    hits = service.recall("quarterly planning", since="2024-04-01T00:00:00Z", until="2024-04-01T00:00:00Z").hits
    assert [h.id for h in hits] == [inside]
