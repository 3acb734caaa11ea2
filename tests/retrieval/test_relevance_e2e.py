"""Relevance end to end over MCP (the real client and server in memory, the real model): a paraphrased note is
found before notes that only share a word with the question, every hit carries a relevance comparable across
queries, min_relevance leaves out the weak ones, and when nothing relevant is stored the result says so."""

from pathlib import Path

import pytest
from mcp import Client

from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.transport.app import build_server
from tests.helpers import call, call_error

pytestmark = pytest.mark.anyio

NOTES = [
    "billing-api source is at github.com/acme/billing-api; CI runs on GitHub Actions.",
    "batch-02.internal runs invoice generation on the 1st of each month at 04:00 UTC.",
    "Invoice PDFs are kept for seven years in the archive bucket.",
    "The dog walker comes on Mondays and Thursdays at noon.",
    "User is allergic to penicillin; amoxicillin caused a rash in 2019.",
    "Sprint planning is every other Monday at 11:00.",
]


async def test_relevance_ranks_filters_and_says_when_nothing_is_relevant(
    data_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(data_dir)})
    async with Client(build_server(settings, embedder=real_embedder)) as client:
        for text in NOTES:
            await call(client, "remember", content=text)

        # "invoicing" is in two notes that do not answer; the one that does shares no word with the question.
        hits = (await call(client, "recall", query="Which antibiotics can't I take?", k=6, min_relevance=0))["hits"]
        assert hits[0]["content"] == NOTES[4]
        assert all(0.0 <= h["relevance"] <= 1.0 for h in hits)
        assert hits[0]["relevance"] > max(h["relevance"] for h in hits[1:])

        answered = await call(client, "recall", query="Where is the code for the invoicing backend hosted?", k=3)
        assert answered["hits"][0]["content"] == NOTES[0]

        # Relevance is comparable across queries: an answer's is higher than the best match of a question
        # whose answer was never stored.
        unrelated = await call(client, "recall", query="What colour is my neighbour's car?", k=3, min_relevance=0)
        assert unrelated["hits"], "with min_relevance 0 the k best come back however weak"
        assert unrelated["hits"][0]["relevance"] < hits[0]["relevance"]

        # Above every hit's relevance: nothing comes back, and the note says so in words a model can act on.
        floor = unrelated["hits"][0]["relevance"] + 1e-3
        empty = await call(client, "recall", query="What colour is my neighbour's car?", min_relevance=floor)
        assert empty["hits"] == []
        assert "No relevant memory" in empty["note"]
        assert "min_relevance 0" in empty["note"]

        kept = await call(
            client, "recall", query="Which antibiotics can't I take?", min_relevance=0.9 * hits[0]["relevance"]
        )
        assert [h["content"] for h in kept["hits"]][:1] == [NOTES[4]]
        assert all(h["relevance"] >= 0.9 * hits[0]["relevance"] for h in kept["hits"])

        message = await call_error(client, "recall", query="dog", min_relevance=1.5)
        assert "min_relevance must be a number from 0 to 1" in message
