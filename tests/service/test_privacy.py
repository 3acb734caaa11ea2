"""Privacy: secrets never stored, forget leaves nothing on disk, the data dir is private, results are bounded."""

import logging
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mcp import Client

from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.redaction import Redactor
from hebbian_memory.service.memory import MemoryService
from hebbian_memory.storage.duckdb import Store
from hebbian_memory.transport.app import build_server
from tests.backends import OpenStore
from tests.helpers import FakeEmbedder, call, call_error, shared_model_cache, stdio_client
from tests.transport.test_handshake import RawServer, initialize

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# (text, the secret in it, the kind it must be reported as): shapes copied from real leaks, values made up.
SECRETS = [
    ("aws_access_key_id = AKIAZ7QXPL4M2RB6TW3D", "AKIAZ7QXPL4M2RB6TW3D", "aws-access-key"),
    (
        "export GITHUB_TOKEN=ghp_4fT9kQ2mZx7LwP1sR8vB3nY6cJ0hD5gA2eK9",
        "ghp_4fT9kQ2mZx7LwP1sR8vB3nY6cJ0hD5gA2eK9",
        "github-token",
    ),
    (
        "use key sk-proj-Qm3x9TfL2pZ8wR4vN7bK1cY6hJ0sD5gA for the bot",
        "sk-proj-Qm3x9TfL2pZ8wR4vN7bK1cY6hJ0sD5gA",
        "api-key",
    ),
    (
        "ANTHROPIC_API_KEY=sk-ant-api03-x7Kq2Lm9Pz4Rw8Tv1Nb6Yc3Hj0Sd5Ga",
        "sk-ant-api03-x7Kq2Lm9Pz4Rw8Tv1Nb6Yc3Hj0Sd5Ga",
        "api-key",
    ),
    ("slack bot token xoxb-2231-88410-kT9qZ2mX7wL", "xoxb-2231-88410-kT9qZ2mX7wL", "slack-token"),
    ("stripe: sk_live_51Hq2xLm9Pz4Rw8Tv1Nb6Yc3", "sk_live_51Hq2xLm9Pz4Rw8Tv1Nb6Yc3", "stripe-key"),
    ("maps key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google-api-key"),
    ("DATABASE_URL=postgres://app:Hunter2-Prod@db.internal:5432/shop", "Hunter2-Prod", "url-password"),
    (
        "curl -H 'Authorization: Bearer 7f3a9c2e1b8d4f6a0e5c7b9d2a4f6e8c'",
        "7f3a9c2e1b8d4f6a0e5c7b9d2a4f6e8c",
        "bearer-token",
    ),
    ("my wifi password is Tr0ub4dor&3", "Tr0ub4dor&3", "password"),
    ('config: {"password": "correct-horse-battery"}', "correct-horse-battery", "password"),
    (
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "jwt",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret",
    ),
    (
        "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-west-1",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret",
    ),
    ('[database]\ndb_password = "correct horse battery staple"', "correct horse battery staple", "password"),
    ("export DEPLOY_TOKEN='9f8e7d6c5b4a3f2e'", "9f8e7d6c5b4a3f2e", "secret"),
    ("JWT_SECRET_VALUE: q8Zr2LmX0pVt", "q8Zr2LmX0pVt", "secret"),
    ('$env:GH_TOKEN = "zz99-local-dev"', "zz99-local-dev", "secret"),
    ("https://api.example.com/v1/items?api_key=Q2x9LmT7pZ4w&page=2", "Q2x9LmT7pZ4w", "secret"),
    (
        "deploy key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "-----END OPENSSH PRIVATE KEY-----\nrotate it yearly",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "private-key",
    ),
]

PROSE = [
    "The password reset email takes five minutes to arrive.",
    "Ana says the password is required on every login.",
    "We store API keys in the vault, never in the repo.",
    "Use a token bucket for rate limiting.",
    "The secret ingredient is cardamom.",
    "Visit https://example.com/docs for the guide.",
    "Meeting at 10:30 with Bob about the AWS bill.",
    "sk-8 is the name of the skateboard shop.",
    "secretary: Margaret Hall",
    "max_tokens = 4096, token_count: 1200",
    "primary_key = customer_id",
]


@pytest.mark.parametrize(("text", "secret", "kind"), SECRETS)
def test_realistic_secrets_are_redacted_and_named(text: str, secret: str, kind: str) -> None:
    result = Redactor().text(text)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert kind in result.kinds


def test_ordinary_prose_about_secrets_is_left_alone() -> None:
    redactor = Redactor()
    for text in PROSE:
        assert redactor.text(text).text == text


def test_redaction_can_be_switched_off_or_extended() -> None:
    assert Redactor(enabled=False).text(SECRETS[0][0]).text == SECRETS[0][0]
    custom = Redactor(extra_patterns=[r"EMP-\d{6}"]).text("badge EMP-123456 for Ana")
    assert custom.text == "badge [REDACTED:custom] for Ana"


def data_files(data_dir: Path) -> bytes:
    """Every byte the server left in its data dir (database, WAL, vector index, sidecars)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file() and "models" not in p.parts)


@pytest.mark.anyio
@pytest.mark.slow
async def test_secrets_never_reach_the_disk_and_forget_leaves_no_trace(data_dir: Path, tmp_path: Path) -> None:
    gone = "Zanzibar quokka locker combination 7731"
    async with stdio_client(data_dir) as client:
        result = await call(
            client,
            "remember",
            content="Staging database: postgres://app:Hunter2-Prod@db.internal/shop, key AKIAZ7QXPL4M2RB6TW3D",
            metadata={"note": "token ghp_4fT9kQ2mZx7LwP1sR8vB3nY6cJ0hD5gA2eK9"},
        )
        assert result["redacted"] == ["aws-access-key", "url-password", "github-token"]
        hit = (await call(client, "recall", query="staging database", k=1))["hits"][0]
        assert "Hunter2-Prod" not in hit["content"]
        assert hit["metadata"] == {"note": "token [REDACTED:github-token]"}

        first = await call(client, "remember", content=gone)
        second = await call(client, "remember", content="The gym opens at six on weekdays.")
        await call(client, "associate", source_id=first["id"], target_ids=[second["id"]])
        assert (await call(client, "recall", query="quokka"))["hits"][0]["id"] == first["id"]
        forgotten = await call(client, "forget", ids=[first["id"]])
        assert forgotten["forgotten"] == 1
        hits = (await call(client, "recall", query="Zanzibar quokka locker", k=10))["hits"]
        assert first["id"] not in [h["id"] for h in hits]
        assert all("quokka" not in h["content"] for h in hits)
        stats = await call(client, "stats")
        assert stats["links"] == 0, "its temporal and explicit links went with it"
        # While the server still runs: the file on disk and its WAL hold no byte of it.
        assert gone.encode() not in data_files(data_dir)
    on_disk = data_files(data_dir)
    for secret in (b"Hunter2-Prod", b"AKIAZ7QXPL4M2RB6TW3D", b"ghp_4fT9kQ2mZx7L", gone.encode()):
        assert secret not in on_disk
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_purge_cut_short_by_a_crash_is_finished_at_the_next_start(data_dir: Path) -> None:
    settings = load_settings(
        env={},
        overrides={
            "data_dir": str(data_dir),
            "model.cache_dir": shared_model_cache(),
            "privacy.purge_after_forget": False,
        },
    )
    clock = ManualClock(START)
    service = MemoryService(settings, Store.open(data_dir / "memory.duckdb", START), FakeEmbedder(), clock)
    service.warm_up()
    doomed = service.remember("Bank PIN hint: the year Ana moved to Lisbon")
    for n in range(50):
        service.remember(f"filler memory number {n}")
    service.close()
    store = Store.open(data_dir / "memory.duckdb", START)
    store.delete([doomed.id], purge_due=True)  # as forget does, then the process dies before the purge
    store.close()
    assert b"Ana moved to Lisbon" in (data_dir / "memory.duckdb").read_bytes(), "DuckDB keeps deleted bytes"

    settings = load_settings(env={}, overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache()})
    service = MemoryService(settings, Store.open(data_dir / "memory.duckdb", START), FakeEmbedder(), clock)
    service.warm_up()
    try:
        assert service.stats().memories == 50
        assert b"Ana moved to Lisbon" not in (data_dir / "memory.duckdb").read_bytes()
        assert service.recall("filler memory number 7", k=1).hits[0].content == "filler memory number 7"
        service.export(data_dir.parent / "after.jsonl")
        exported = (data_dir.parent / "after.jsonl").read_text()
        assert "filler memory number 7" in exported
        assert "Lisbon" not in exported, "an export made after forget does not hold it"
    finally:
        service.close()


def test_recall_results_stay_within_the_size_limit_and_say_so(data_dir: Path, open_store: OpenStore) -> None:
    settings = load_settings(
        env={},
        overrides={"data_dir": str(data_dir), "model.cache_dir": shared_model_cache(), "limits.max_result_chars": 100},
    )
    service = MemoryService(settings, open_store(data_dir / "memory.duckdb", START), FakeEmbedder(), ManualClock(START))
    service.warm_up()
    try:
        for n in range(5):
            service.remember(f"A note about the garden, number {n}, with some padding text.")  # 59 characters
        capped = service.recall("garden note", k=5)
        assert len(capped.hits) == 1
        assert capped.truncated
        small = service.recall("garden note", k=1)
        assert not small.truncated
    finally:
        service.close()


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AKIA = "AKIAZ7QXPL4M2RB6TW3D"
GITHUB = "ghp_4fT9kQ2mZx7LwP1sR8vB3nY6cJ0hD5gA2eK9"


def export_text(settings: Settings, path: Path) -> str:
    store = Store.open(settings.data_dir / "memory.duckdb", START)
    service = MemoryService(settings, store, FakeEmbedder(), ManualClock(START))
    service.warm_up()
    try:
        service.export(path)
    finally:
        service.close()
    return path.read_text()


@pytest.mark.anyio
async def test_secrets_in_assignments_tags_and_metadata_keys_are_kept_out_of_the_database_and_exports(
    settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    async with Client(build_server(settings, embedder=FakeEmbedder(), clock=ManualClock(START))) as client:
        env = await call(client, "remember", content=f"CI env: AWS_SECRET_ACCESS_KEY={AWS_SECRET}")
        ini = await call(
            client, "remember", content=f"~/.aws/credentials:\n[default]\naws_secret_access_key = {AWS_SECRET}"
        )
        toml = await call(client, "remember", content='config.toml has db_password = "correct horse battery staple"')
        tagged = await call(client, "remember", content="The build key lives in the tags.", tags=[AKIA, "ci"])
        keyed = await call(
            client,
            "remember",
            content="The deploy notes are in the metadata.",
            metadata={AKIA: "found in the logs", "deploy": {"slack_bot_token": "T0K3N-4-the-bot"}},
        )
        assert env["redacted"] == ["secret"]
        assert ini["redacted"] == ["secret"]
        assert toml["redacted"] == ["password"]
        assert tagged["redacted"] == ["aws-access-key"]
        assert keyed["redacted"] == ["aws-access-key", "secret"]
        hits = (await call(client, "recall", query="deploy notes metadata", k=1))["hits"]
        assert hits[0]["metadata"] == {
            "[REDACTED:aws-access-key]": "found in the logs",
            "deploy": {"slack_bot_token": "[REDACTED:secret]"},
        }
    exported = export_text(settings, tmp_path / "export.jsonl")
    on_disk = data_files(data_dir)
    for secret in (AWS_SECRET, "correct horse battery", AKIA, "T0K3N-4-the-bot"):
        assert secret not in exported
        assert secret.encode() not in on_disk
        assert secret.lower() not in exported.lower(), "not even lower-cased, as tags are"
    assert "The build key lives in the tags." in exported


@pytest.mark.anyio
async def test_a_tool_error_quoting_a_secret_masks_it_in_the_answer_and_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with Client(build_server(settings, embedder=FakeEmbedder(), clock=ManualClock(START))) as client:
        with caplog.at_level(logging.INFO):
            bad_date = await call_error(client, "remember", content="Deploy day.", event_time=f"token {GITHUB}")
            bad_type = await call_error(client, "recall", query="deploys", tags=GITHUB)
    assert "is not a date" in bad_date
    assert "tags must be a list" in bad_type
    for answer in (bad_date, bad_type):
        assert GITHUB not in answer
        assert "[REDACTED:github-token]" in answer
    assert "failed" in caplog.text, "the SDK logged the tool error"
    assert GITHUB[:12] not in caplog.text


def test_log_lines_of_the_server_process_mask_the_secrets_they_quote(tmp_path: Path) -> None:
    """The SDK logs a failed resource read with its URI, the caller's text: the process's log handler masks it."""
    server = RawServer(tmp_path / "data", early=True, env={"HEBBIAN_MEMORY_LOG_LEVEL": "INFO"})
    try:
        server.send(initialize("2025-06-18"))
        server.receive()
        uri = f"memory://memories/{GITHUB}"
        server.send(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": uri}},
        )
        answer = server.until(2)[-1]
    finally:
        stderr = server.close()
    assert "not a memory id" in answer["error"]["message"]
    assert GITHUB not in answer["error"]["message"]
    assert "memory://memories/[REDACTED:github-token]" in stderr, stderr
    assert GITHUB[:12] not in stderr
