"""The bundled model through OnnxEmbedder: unit vectors, order kept, memory given back, and its copy quantized
for the CPU: close to the packaged model, made once per cache, made again when damaged."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import TOKENIZER_DIR, OnnxEmbedder, verified_bundled_model
from hebbian_memory.embedding.quantize import (
    DIGEST_FILE,
    FOLDER,
    LOCK_FILE,
    MODEL_FILE,
    TIMEOUT_S,
    cached_model_dir,
    quantized_model_dir,
    sha256_of,
)
from hebbian_memory.errors import ModelError
from tests.planted import VICTIM_TEXT, assert_untouched


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_texts_come_back_as_unit_vectors_in_their_order(real_embedder: OnnxEmbedder) -> None:
    texts = ["a much longer sentence about the weather in Lisbon last spring", "cats", "dogs bark"]
    vectors = real_embedder.embed(texts)
    assert vectors.shape == (3, real_embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(real_embedder.embed([text])[0], vector, atol=1e-5)


def test_texts_embedded_together_match_their_own_vectors_whatever_their_lengths(real_embedder: OnnxEmbedder) -> None:
    """One padded run (recall's residual check): the padding must not leak into a short text's vector."""
    texts = [
        "When did  go to the ?",
        "What does the user do on weekends when the weather is good and the kids are free?",
    ]
    alone = real_embedder.embed(texts)
    together = real_embedder.embed_together(texts)
    assert together.shape == alone.shape
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert (np.sum(alone * together, axis=1) > 0.98).all()
    assert float(together[0] @ together[1]) < 0.9


def test_a_large_batch_gives_its_memory_back(real_embedder: OnnxEmbedder) -> None:
    """With onnxruntime's CPU arena this batch kept about 400 MB for the life of the process."""
    real_embedder.embed(["warm up"])
    before = rss_mb()
    real_embedder.embed(["a long note about the garden, the weather and what we planted this year " * 12] * 64)
    assert rss_mb() - before < 150


TEXTS = [
    "Caroline went to the LGBTQ support group yesterday and found it really moving.",
    "Melanie painted a sunrise over the lake last year.",
    "What did Caroline research for her career?",
    "I'm thinking of going into counselling or mental health work.",
    "We took the kids camping in the mountains in June.",
    "The pottery class was so relaxing, I made a little bowl.",
    "When did Melanie run the charity race?",
    "My grandmother gave me this necklace when I was young.",
    "cats",
    "A long note about the garden, the weather and what we planted this year, tomatoes mostly.",
]


def fastembed_vectors(name: str, model_file: str, folder: Path, texts: list[str]) -> npt.NDArray[np.float32]:
    """``texts`` embedded by fastembed itself, one per batch, from an ONNX file and a tokenizer folder."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    if name.lower() not in {m["model"].lower() for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),
            dim=384,
            model_file=model_file,
        )
    model = TextEmbedding(name, specific_model_path=str(folder))
    vectors = np.asarray(list(model.embed(texts, batch_size=1)), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_quantized_model_keeps_the_packaged_models_meaning(real_embedder: OnnxEmbedder) -> None:
    """The packaged int8 model as it ships (its float32-folded weights) against the copy quantized for the CPU:
    the vectors must stay close, or every stored memory would move in the index."""
    reference = fastembed_vectors("test/packaged", str(verified_bundled_model()), TOKENIZER_DIR, TEXTS)
    cosines = np.sum(reference * real_embedder.embed(TEXTS), axis=1)
    assert float(np.median(cosines)) > 0.99, cosines
    assert float(cosines.min()) > 0.98, cosines


def test_the_direct_run_is_what_fastembed_computes(real_embedder: OnnxEmbedder, model_cache: Path) -> None:
    """The bundled model runs without fastembed (tokenizer, session and mean pooling by hand): on the same model
    folder it must give fastembed's vectors, for short texts and for one past the 512-token limit."""
    folder = cached_model_dir(model_cache)
    assert folder is not None
    texts = [*TEXTS, "word " * 700]
    expected = fastembed_vectors("test/quantized", MODEL_FILE, folder, texts)
    np.testing.assert_allclose(real_embedder.embed(texts), expected, atol=1e-5)


def test_the_model_is_quantized_once_per_cache_and_again_when_damaged(tmp_path: Path) -> None:
    (tmp_path / ".quantizing-killed").mkdir()  # the work folder of a process killed while quantizing
    first = OnnxEmbedder("default", tmp_path)
    first.load()
    folder = cached_model_dir(tmp_path)
    assert folder is not None
    model = folder / MODEL_FILE
    assert (folder / DIGEST_FILE).read_text().strip() == sha256_of(model)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".quantizing-")]  # no work dir left behind
    expected = first.embed(TEXTS)

    made_at = model.stat().st_mtime_ns
    again = OnnxEmbedder("default", tmp_path)
    again.load()
    assert model.stat().st_mtime_ns == made_at  # reused, not derived again

    with model.open("r+b") as f:  # damaged: half of it gone
        f.truncate(model.stat().st_size // 2)
    assert cached_model_dir(tmp_path) is None
    healed = OnnxEmbedder("default", tmp_path)
    np.testing.assert_allclose(healed.embed(TEXTS), expected, atol=1e-6)
    assert sha256_of(model) == (folder / DIGEST_FILE).read_text().strip()


def test_a_link_planted_at_the_model_caches_lock_file_is_not_followed(tmp_path: Path) -> None:
    """Opening the lock through a dangling link would create the file it names, wherever that is."""
    cache = tmp_path / "cache"
    cache.mkdir()
    elsewhere = tmp_path / "elsewhere.lock"
    (cache / LOCK_FILE).symlink_to(elsewhere)

    def packaged_model() -> Path:
        raise AssertionError("nothing is quantized under a lock taken through a link")

    with pytest.raises(ModelError, match=LOCK_FILE):
        quantized_model_dir(cache, packaged_model, TOKENIZER_DIR)
    assert not elsewhere.exists()


def test_a_link_planted_at_the_model_folder_is_replaced_and_what_it_points_to_left_alone(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    victims = tmp_path / "victims"
    victims.mkdir()
    victim = victims / "notes.txt"
    victim.write_text(VICTIM_TEXT)
    (cache / FOLDER).symlink_to(victims, target_is_directory=True)
    OnnxEmbedder("default", cache).load()
    assert not (cache / FOLDER).is_symlink()
    assert cached_model_dir(cache) == cache / FOLDER
    assert sorted(victims.iterdir()) == [victim]
    assert_untouched(victim)


# One preparation as a server's first start does it, in a process of its own, logging what it did.
PREPARE = (
    "import logging, sys; from pathlib import Path; from hebbian_memory.embedding.embedder import OnnxEmbedder; "
    "logging.basicConfig(level=logging.INFO); OnnxEmbedder('default', Path(sys.argv[1])).load()"
)


def test_two_processes_preparing_one_empty_cache_at_once_make_one_copy_and_both_use_it(tmp_path: Path) -> None:
    """Two first starts at once: the second waits on the lock while the first quantizes, then reuses its copy."""
    cache = tmp_path / "cache"
    runs = [
        subprocess.Popen([sys.executable, "-c", PREPARE, str(cache)], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    logs = [run.communicate(timeout=TIMEOUT_S)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs
    assert sum(log.count("quantizing the embedding model") for log in logs) == 1, logs
    folder = cached_model_dir(cache)
    assert folder is not None  # whole: its sha256 checked
    assert sorted(p.name for p in cache.iterdir()) == sorted([folder.name, LOCK_FILE])  # one copy, no work folder
    assert OnnxEmbedder("default", cache).embed(["one whole model"]).shape == (1, 384)


def test_a_second_fresh_data_dir_reuses_the_model_prepared_for_the_first(tmp_path: Path) -> None:
    first, second = (load_settings(env={}, overrides={"data_dir": str(tmp_path / name)}) for name in ("a", "b"))
    OnnxEmbedder(first.model.name, first.model_cache_dir).load()
    folder = cached_model_dir(first.model_cache_dir)
    assert folder is not None
    made = (folder / MODEL_FILE).stat()
    OnnxEmbedder(second.model.name, second.model_cache_dir).load()
    assert cached_model_dir(second.model_cache_dir) == folder
    again = (folder / MODEL_FILE).stat()
    assert (again.st_ino, again.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # not quantized again
    assert sorted(tmp_path.iterdir()) == []  # nothing written to the data dirs
