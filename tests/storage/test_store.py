import gzip
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

import hebbian_memory.storage
from hebbian_memory.errors import DatabaseDamagedError, StorageError
from hebbian_memory.storage import Link, NewMemory
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.storage.duckdb.schema import SCHEMA_VERSION, current_version
from tests.planted import assert_private_regular_file, assert_untouched, plant_links

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _memory(text: str, tags: tuple[str, ...] = ()) -> NewMemory:
    return NewMemory(
        content=text,
        content_hash=f"hash-{text}",
        tags=tags,
        metadata={"k": text},
        importance=0.5,
        event_time=NOW,
        embedding=np.arange(4, dtype=np.float32),
        embedding_model="m",
        session_id=None,
    )


def test_a_new_database_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.duckdb", NOW)
    store.close()
    with duckdb.connect(str(tmp_path / "m.duckdb")) as conn:
        assert current_version(conn) == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"memories", "associations", "sessions", "access_events", "meta", "schema_version"} <= tables


def test_rows_round_trip_with_times_in_utc(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.duckdb", NOW)
    (memory_id,) = store.insert([_memory("hello", ("a", "b"))], NOW)
    row = store.get([memory_id])[memory_id]
    assert (row.content, row.tags, row.metadata, row.created_at) == ("hello", ["a", "b"], {"k": "hello"}, NOW)
    assert store.embeddings([memory_id], 4).tolist() == [[0.0, 1.0, 2.0, 3.0]]
    assert store.ids_by_hash(["hash-hello", "nope"], "default") == {"hash-hello": memory_id}
    assert store.ids_by_hash(["hash-hello"], "elsewhere") == {}
    store.close()


def test_deleting_a_memory_removes_its_links_and_events(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.duckdb", NOW)
    a, b = store.insert([_memory("a"), _memory("b")], NOW)
    store.save_links([Link(a, b, 0.5, 2, "explicit", 1, NOW, NOW, NOW)], events=[(a, None, "linked", NOW)])
    assert [link.target_id for link in store.links_of(a)] == [b]
    store.delete([a])
    assert store.get([a]) == {}
    assert store.links_of(b) == []
    assert store.missing([a, b]) == {a}
    events = store._fetch("SELECT count(*) FROM access_events WHERE memory_id = ?", [a])  # pyright: ignore[reportPrivateUsage]
    assert events[0][0] == 0
    store.close()


def test_a_purge_writes_its_copy_where_no_planted_link_reaches_and_leaves_it_owner_only(tmp_path: Path) -> None:
    """DuckDB opens the purge's copy by name: it is made in a private folder, so a link planted at the copy's old
    name (m.duckdb.purge) is never written through; the folder a crashed purge left is removed at the next open."""
    path = tmp_path / "m.duckdb"
    crashed = tmp_path / "m.duckdb.0123456789abcdef.partial"
    crashed.mkdir()
    (crashed / "m.duckdb").write_bytes(b"a copy of every memory, half made")
    store = Store.open(path, NOW)
    assert not crashed.exists()
    victim = plant_links(tmp_path / "m.duckdb.purge")
    try:
        kept, gone = store.insert([_memory("kept"), _memory("secret to forget")], NOW)
        store.delete([gone], purge_due=True)
        store.purge()
        assert set(store.get([kept, gone])) == {kept}
    finally:
        store.close()
    assert_untouched(victim)
    assert_private_regular_file(path)
    assert b"secret to forget" not in path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.duckdb", "m.duckdb.purge", "victim.txt"]


def test_a_damaged_database_file_is_reported_by_name_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    garbage = b"this is not a database " * 4096
    path.write_bytes(garbage)
    with pytest.raises(DatabaseDamagedError, match=str(path)) as caught:
        Store.open(path, NOW)
    assert "backup" in str(caught.value)
    assert path.read_bytes() == garbage


@pytest.mark.parametrize("kept", [0.5, 0.01])
def test_a_truncated_database_file_is_reported_with_how_to_restore_and_left_untouched(
    tmp_path: Path, kept: float
) -> None:
    whole = gzip.decompress((Path(__file__).parents[1] / "fixtures" / "schema-v1.duckdb.gz").read_bytes())
    path = tmp_path / "memory.duckdb"
    path.write_bytes(whole[: int(len(whole) * kept)])
    before = path.read_bytes()
    with pytest.raises(DatabaseDamagedError, match=str(path)) as caught:
        Store.open(path, NOW)
    assert "hebbian-memory import" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.duckdb"], "nothing written beside it"


def test_a_database_held_by_another_connection_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    store = Store.open(path, NOW)
    # DuckDB allows one writer per file per process pair; a second process would see the lock.
    import subprocess
    import sys

    code = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path\n"
        "from hebbian_memory.storage.duckdb import Store\n"
        "from hebbian_memory.errors import StorageError\n"
        f"try:\n    Store.open(Path({str(path)!r}), datetime(2026, 1, 1, tzinfo=UTC))\n"
        "except StorageError as e:\n    print(e); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    store.close()
    assert done.returncode == 3, done.stderr
    assert "in use by another process" in done.stdout
    assert issubclass(DatabaseDamagedError, StorageError)


def test_documents_around_new_memories_are_those_rows_of_the_full_listing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.duckdb", NOW)
    try:
        a1, a2, b1, x, a3, _b2 = store.insert(
            [_memory("a1"), _memory("a2"), _memory("b1"), _memory("x"), _memory("a3"), _memory("b2")], NOW
        )
        store.close()
        conn = duckdb.connect(str(tmp_path / "m.duckdb"))
        conn.execute("UPDATE memories SET session_id = 1 WHERE id IN (?, ?, ?)", [a1, a2, a3])
        conn.execute("UPDATE memories SET session_id = 2 WHERE id = ?", [b1])
        conn.close()
        store = Store.open(tmp_path / "m.duckdb", NOW)
        full = {d.id: d for d in store.documents()}
        around = store.documents_around([a3, x])
        assert [d.id for d in around] == [a2, x, a3], "a3's neighbour a2 (its next context changed), and x alone"
        assert all(d == full[d.id] for d in around)
        assert (full[a3].previous, full[a2].next) == ("a2", "a3")
        assert [d for batch in store.iter_documents(4) for d in batch] == list(full.values())
    finally:
        store.close()


def test_every_storage_module_stays_within_the_400_line_limit() -> None:
    folder = Path(hebbian_memory.storage.__file__).parent
    sizes = {p.relative_to(folder).as_posix(): len(p.read_text().splitlines()) for p in folder.rglob("*.py")}
    assert "duckdb/store.py" in sizes
    assert {name: n for name, n in sizes.items() if n > 400} == {}
