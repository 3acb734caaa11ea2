"""usearch imported before onnxruntime segfaults; the server must always load them in the safe order."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import hebbian_memory.transport.app, hebbian_memory.cli  # what `hebbian-memory serve` imports before answering
early = [m for m in ("onnxruntime", "usearch", "fastembed") if m in sys.modules]
from hebbian_memory.config import load_settings
from hebbian_memory.embedding.embedder import OnnxEmbedder
from hebbian_memory.retrieval.vectors import VectorIndex
from pathlib import Path
settings = load_settings(env={}, overrides={"data_dir": sys.argv[1]})
index = VectorIndex(Path(sys.argv[1]) / "v.usearch", "m", 384, settings.index)  # loads usearch
embedder = OnnxEmbedder("default", Path(sys.argv[1]))
vector = embedder.embed(["does it run"])
index.add([1], vector)
order = list(sys.modules)
print(early, order.index("onnxruntime") < order.index("usearch"), index.search(vector[0], 1)[0][0])
"""


def test_the_server_import_path_loads_onnxruntime_before_usearch_and_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"crashed with {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["[]", "True", "1"], "native libraries load lazily, onnxruntime first"
