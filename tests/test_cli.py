import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from hebbian_memory import __version__
from hebbian_memory.cli import main


def test_help_and_version_describe_the_commands() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output
    assert "--data-dir" in result.output
    assert __version__ in runner.invoke(main, ["--version"]).output


def test_a_damaged_database_stops_the_server_with_the_file_named_and_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "memory.duckdb"
    db.write_bytes(b"\x01not duckdb" * 10_000)
    before = db.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path)],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert str(db) in done.stderr
    assert "backup" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == "", "stdout is reserved for the protocol"
    assert db.read_bytes() == before


def test_bad_configuration_is_reported_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path)],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", "HEBBIAN_MEMORY_RECALL_DEFAULT_K": "lots"},
    )
    assert done.returncode == 1
    assert "HEBBIAN_MEMORY_RECALL_DEFAULT_K" in done.stderr
    assert not (tmp_path / "memory.duckdb").exists()


def test_stats_and_consolidate_commands_print_json_about_the_data_dir(tmp_path: Path) -> None:
    import json

    def run(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    stats = run("stats", "--json")
    assert stats["memories"] == 0
    assert stats["last_consolidation"] is None
    report = run("consolidate", "--json")
    assert report["pruned"] == 0
    assert run("stats", "--json")["last_consolidation"] == report["at"]


def test_search_and_doctor_from_the_terminal(tmp_path: Path) -> None:
    import json

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hebbian_memory", "--data-dir", str(tmp_path / "data"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, done.stderr
        return done.stdout

    notes = tmp_path / "notes.jsonl"
    notes.write_text(
        '{"type": "memory", "content": "The boiler is serviced every October.", "tags": ["house"]}\n'
        '{"type": "memory", "content": "Ana plays the cello on Thursdays."}\n'
    )
    run("import", str(notes))
    found = run("search", "when is the boiler serviced", "-k", "1")
    assert "The boiler is serviced every October." in found
    assert "[house]" in found
    hits = json.loads(run("search", "cello", "--json"))["hits"]
    assert hits[0]["content"] == "Ana plays the cello on Thursdays."
    assert "Nothing found." in run("search", "cello", "--tag", "house", "--since", "2999-01-01")

    report = {c["name"]: c for c in json.loads(run("doctor", "--json"))}
    assert all(c["ok"] for c in report.values()), report
    assert "sha256 verified" in report["model"]["detail"]
    assert report["indexes"]["detail"] == "vector index 2, keyword index 2, database 2"
    assert "ok " in run("doctor")

    (tmp_path / "data").chmod(0o755)
    human = run("doctor", code=1)
    assert "BAD  data dir" in human
    assert f"chmod 700 {tmp_path / 'data'}" in human


def test_reindex_rebuilds_both_indexes_with_progress_and_refuses_a_used_data_dir(tmp_path: Path) -> None:
    import json

    from hebbian_memory.sharing.election import OwnerLock

    data = tmp_path / "data"
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(f'{{"type": "memory", "content": "Reindexed note {n}."}}\n' for n in range(30)))
    runner = CliRunner()
    assert runner.invoke(main, ["--data-dir", str(data), "import", str(notes)]).exit_code == 0
    (data / "vectors.usearch").write_bytes(b"garbage")

    result = runner.invoke(main, ["--data-dir", str(data), "reindex", "--reembed", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"memories": 30, "vector_index": 30, "keyword_index": 30, "reembedded": 30}
    shown = runner.invoke(main, ["--data-dir", str(data), "reindex"])
    assert "vector index" in shown.stderr
    assert "keyword index" in shown.stderr
    assert "Rebuilt both indexes over 30 memories." in shown.stdout

    lock = OwnerLock(data)
    assert lock.try_acquire()
    try:
        refused = runner.invoke(main, ["--data-dir", str(data), "reindex"])
    finally:
        lock.release()
    assert refused.exit_code == 1
    assert "A server is using" in refused.output
