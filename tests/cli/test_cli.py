import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from hebbian_memory import __version__
from hebbian_memory.cli import main
from tests.helpers import MODEL_CACHE_ENV, base_env


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


SHARED_OPTIONS = ("--data-dir", "--config", "--log-level")


def test_every_command_lists_the_shared_options_and_json_in_its_help() -> None:
    runner = CliRunner()
    for name in main.list_commands(click.Context(main)):
        shown = runner.invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        for option in SHARED_OPTIONS:
            assert option in shown.output, f"{name} --help lacks {option}"
        assert (name != "serve") == ("--json" in shown.output), f"{name} --help and --json"
    assert "--json" in runner.invoke(main, ["--help"]).output


def test_help_explains_the_log_level_and_the_http_token() -> None:
    runner = CliRunner()
    top = " ".join(runner.invoke(main, ["--help"]).output.split())
    assert "--log-level" in top
    assert "WARNING for the other commands" in top
    serve = " ".join(runner.invoke(main, ["serve", "--help"]).output.split())
    assert "HEBBIAN_MEMORY_HTTP_TOKEN" in serve
    assert "Authorization: Bearer" in serve


def test_shared_options_and_json_work_before_and_after_the_command_and_after_wins(tmp_path: Path) -> None:
    runner = CliRunner()
    before, after = tmp_path / "before", tmp_path / "after"

    result = runner.invoke(main, ["stats", "--data-dir", str(after), "--json", "--log-level", "ERROR"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["memories"] == 0
    assert (after / "memory.duckdb").exists()

    result = runner.invoke(main, ["--json", "--data-dir", str(before), "stats"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["memories"] == 0
    assert (before / "memory.duckdb").exists()

    (after / "memory.duckdb").unlink()
    result = runner.invoke(main, ["--data-dir", str(tmp_path / "unused"), "search", "cello", "--data-dir", str(after)])
    assert result.exit_code == 0, result.output
    assert (after / "memory.duckdb").exists(), "the data dir given after the command wins"
    assert not (tmp_path / "unused").exists()


def run_cli(data_dir: Path, model_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (logging is configured once per process)."""
    env = {**base_env(data_dir), MODEL_CACHE_ENV: str(model_cache)}
    return subprocess.run(
        [sys.executable, "-m", "hebbian_memory", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def test_one_off_commands_log_only_warnings_unless_asked(tmp_path: Path, model_cache: Path) -> None:
    quiet = run_cli(tmp_path / "data", model_cache, "stats")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    told = run_cli(tmp_path / "data", model_cache, "stats", "--log-level", "INFO")
    assert "INFO hebbian_memory.sharing.node: owner of" in told.stderr, "--log-level after the command counts"


def test_one_off_commands_that_embed_nothing_do_not_load_the_model(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "empty-model-cache"
    cache.mkdir()
    commands = (
        ["stats"],
        ["export", str(tmp_path / "backup.jsonl")],
        ["consolidate"],
        ["doctor", "--json"],
        ["reindex"],
    )
    for args in commands:
        done = run_cli(data, cache, *args)
        assert done.returncode == 0, done.stderr
        assert list(cache.iterdir()) == [], f"{args} prepared the model"


ONE_OFF = """
import sys
from hebbian_memory.cli import main
main(["stats", "--data-dir", sys.argv[1]], standalone_mode=False)
print("mcp" in sys.modules, "starlette" in sys.modules)
"""


def test_one_off_commands_do_not_import_the_mcp_sdk(tmp_path: Path, model_cache: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ONE_OFF, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**base_env(tmp_path), MODEL_CACHE_ENV: str(model_cache)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "False"], "only serve pays for importing the SDK (about 1 s)"
