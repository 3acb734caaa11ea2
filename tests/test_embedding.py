"""The bundled model through FastEmbedEmbedder: unit vectors, order kept, and memory given back."""

from pathlib import Path

import numpy as np

from hebbian_memory.embedding import FastEmbedEmbedder


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_texts_come_back_as_unit_vectors_in_their_order(real_embedder: FastEmbedEmbedder) -> None:
    texts = ["a much longer sentence about the weather in Lisbon last spring", "cats", "dogs bark"]
    vectors = real_embedder.embed(texts)
    assert vectors.shape == (3, real_embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(real_embedder.embed([text])[0], vector, atol=1e-5)


def test_a_large_batch_gives_its_memory_back(real_embedder: FastEmbedEmbedder) -> None:
    """With onnxruntime's CPU arena this batch kept about 400 MB for the life of the process."""
    real_embedder.embed(["warm up"])
    before = rss_mb()
    real_embedder.embed(["a long note about the garden, the weather and what we planted this year " * 12] * 64)
    assert rss_mb() - before < 150
