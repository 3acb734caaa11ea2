from pathlib import Path

import numpy as np

from hebbian_memory.config import Settings
from hebbian_memory.retrieval.vectors import VectorIndex
from tests.planted import assert_private_regular_file, assert_untouched, plant_links

DIM = 16


def _vectors(ids: list[int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(200, DIM)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    return table[np.asarray(ids)]


def _index(path: Path, settings: Settings) -> VectorIndex:
    return VectorIndex(path, "test-model", DIM, settings.index)


def _open(path: Path, settings: Settings, ids: list[int]) -> tuple[VectorIndex, str]:
    index = _index(path, settings)
    outcome = index.open(np.asarray(ids, dtype=np.int64), lambda wanted: _vectors(list(wanted)))
    return index, outcome


def test_missing_index_is_built_then_loaded_from_disk(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "v.usearch"
    index, outcome = _open(path, settings, [1, 2, 3])
    assert outcome == "rebuilt"
    index.save()
    again, outcome = _open(path, settings, [1, 2, 3])
    assert outcome == "loaded"
    assert again.search(_vectors([2])[0], 1)[0][0] == 2


def test_a_stale_index_is_reconciled_with_the_database(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "v.usearch"
    index, _ = _open(path, settings, [1, 2, 3])
    index.save()
    # The database moved on after the last save: 3 was forgotten, 4 and 5 were remembered.
    again, outcome = _open(path, settings, [1, 2, 4, 5])
    assert outcome == "repaired"
    assert len(again) == 4
    found = {i for i, _ in again.search(_vectors([3])[0], 10)}
    assert found == {1, 2, 4, 5}


def test_truncated_or_garbage_files_are_rebuilt_not_trusted(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "v.usearch"
    index, _ = _open(path, settings, list(range(1, 50)))
    index.save()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rebuilt, outcome = _open(path, settings, list(range(1, 50)))
    assert outcome == "rebuilt"
    assert len(rebuilt) == 49
    path.write_bytes(b"\x00garbage" * 1000)
    (tmp_path / "v.usearch.json").unlink()
    rebuilt, outcome = _open(path, settings, list(range(1, 50)))
    assert outcome == "rebuilt"
    assert len(rebuilt) == 49


def test_an_index_built_for_another_model_is_rebuilt(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "v.usearch"
    index, _ = _open(path, settings, [1, 2])
    index.save()
    other = VectorIndex(path, "another-model", DIM, settings.index)
    assert other.open(np.asarray([1, 2], dtype=np.int64), lambda w: _vectors(list(w))) == "rebuilt"


def test_search_returns_cosine_similarity_best_first(tmp_path: Path, settings: Settings) -> None:
    index, _ = _open(tmp_path / "v.usearch", settings, list(range(1, 100)))
    hits = index.search(_vectors([42])[0], 5)
    assert hits[0][0] == 42
    assert hits[0][1] > 0.99
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    index.remove([42])
    assert 42 not in {i for i, _ in index.search(_vectors([42])[0], 5)}


def test_a_save_over_planted_links_writes_through_none_of_them(tmp_path: Path, settings: Settings) -> None:
    """usearch opens its file by name: links planted at the index, its sidecar and their old temporary name
    (``v.usearch.tmp``, used by both) are replaced, and the victim they point to is left alone."""
    path = tmp_path / "v.usearch"
    index, _ = _open(path, settings, [1, 2, 3])
    victim = plant_links(path, "v.usearch.tmp", "v.usearch.json")
    index.save()
    assert_untouched(victim)
    assert_private_regular_file(path)
    assert_private_regular_file(tmp_path / "v.usearch.json")
    again, outcome = _open(path, settings, [1, 2, 3])
    assert outcome == "loaded", "the file and its sidecar are whole and agree"
    assert again.search(_vectors([2])[0], 1)[0][0] == 2


def test_a_save_removes_what_a_crashed_save_left_behind(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "v.usearch"
    crashed = tmp_path / "v.usearch.0123456789abcdef.partial"
    crashed.mkdir()
    (crashed / "v.usearch").write_bytes(b"half an index")
    (tmp_path / "v.usearch.json.fedcba9876543210.partial").write_text("{")
    index, _ = _open(path, settings, [1, 2, 3])
    index.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.usearch", "v.usearch.json"]
