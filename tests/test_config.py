import tomllib
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hebbian_memory.config import SECTIONS, default_config_path, load_settings
from hebbian_memory.errors import ConfigError


def test_every_setting_has_a_default_in_the_toml_file_and_nothing_else_is_there() -> None:
    raw = tomllib.loads(default_config_path().read_text())
    assert set(raw) == {
        "data_dir",
        "log_level",
        "project",
        "project_from_roots",
        "early_initialize",
        "fixed_time",
        *SECTIONS,
    }
    for name, cls in SECTIONS.items():
        assert set(raw[name]) == {f.name for f in fields(cls)}, name


def test_a_fixed_time_stops_the_clock_at_that_instant_and_must_name_its_offset() -> None:
    from hebbian_memory.app.wiring import settings_clock

    assert load_settings(env={}).fixed_time is None
    settings = load_settings(env={"HEBBIAN_MEMORY_FIXED_TIME": "2026-03-02T10:00:00+01:00"})
    assert settings.fixed_time == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert settings_clock(settings).now() == settings_clock(settings).now() == datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(ConfigError, match="UTC offset"):
        load_settings(env={"HEBBIAN_MEMORY_FIXED_TIME": "2026-03-02T10:00:00"})
    with pytest.raises(ConfigError, match="ISO 8601"):
        load_settings(env={"HEBBIAN_MEMORY_FIXED_TIME": "yesterday"})


def test_data_dir_defaults_to_the_platform_user_data_dir() -> None:
    settings = load_settings(env={})
    assert settings.data_dir.name == "hebbian-memory"
    assert settings.recall.default_k == 10


def test_the_model_cache_is_the_users_so_every_data_dir_shares_one(tmp_path: Path, user_cache: Path) -> None:
    first, second = (load_settings(env={}, overrides={"data_dir": str(tmp_path / name)}) for name in ("a", "b"))
    assert first.model_cache_dir == second.model_cache_dir == user_cache / "hebbian-memory" / "models"


def test_a_configured_model_cache_dir_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(env={"HEBBIAN_MEMORY_MODEL_CACHE_DIR": "~/models"})
    assert settings.model_cache_dir == tmp_path / "models"


def test_environment_overrides_the_defaults_with_typed_values(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "HEBBIAN_MEMORY_DATA_DIR": str(tmp_path),
            "HEBBIAN_MEMORY_RECALL_DEFAULT_K": "5",
            "HEBBIAN_MEMORY_RECALL_KEYWORD_WEIGHT": "0.25",
            "HEBBIAN_MEMORY_LOG_LEVEL": "debug",
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.recall.default_k == 5
    assert settings.recall.keyword_weight == 0.25
    assert settings.log_level == "DEBUG"


def test_a_user_file_then_env_then_flags_take_precedence_in_that_order(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('data_dir = "/from/file"\n[limits]\nmax_k = 50\n[recall]\ndefault_k = 7\n')
    env = {"HEBBIAN_MEMORY_CONFIG": str(user), "HEBBIAN_MEMORY_RECALL_DEFAULT_K": "8"}
    settings = load_settings(env=env, overrides={"data_dir": str(tmp_path / "flag")})
    assert settings.limits.max_k == 50
    assert settings.recall.default_k == 8
    assert settings.data_dir == tmp_path / "flag"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HEBBIAN_MEMORY_RECALL_DEFAULT_K": "ten"}, "must be a int"),
        ({"HEBBIAN_MEMORY_RECALL_KEYWORD_WEIGHT": "-1"}, "keyword_weight must be 0 or more"),
        ({"HEBBIAN_MEMORY_RECALL_MIN_RELEVANCE": "1.5"}, "min_relevance must be between 0 and 1"),
        ({"HEBBIAN_MEMORY_INDEX_DTYPE": "f64"}, "index.dtype"),
        ({"HEBBIAN_MEMORY_RECALL_ANSWER_KINDS": "time,colour"}, "answer_kinds may hold only time, quantity, title"),
        ({"HEBBIAN_MEMORY_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"HEBBIAN_MEMORY_CONFIG": "/nonexistent/file.toml"}, "not found"),
    ],
)
def test_bad_settings_are_rejected_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_an_unknown_key_in_a_user_file_is_an_error_not_silently_ignored(tmp_path: Path) -> None:
    user = tmp_path / "typo.toml"
    user.write_text("[recall]\ndefualt_k = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'recall\.defualt_k'"):
        load_settings(config_file=user, env={})


def test_a_tokens_file_comes_from_the_environment_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"HEBBIAN_MEMORY_HTTP_TOKENS_FILE": "team/tokens.toml"})
    assert settings.http.tokens_file == str(tmp_path / "team" / "tokens.toml")
    assert load_settings(env={}).http.tokens_file == ""


def test_a_shared_token_and_a_tokens_file_together_are_refused() -> None:
    env = {"HEBBIAN_MEMORY_HTTP_TOKEN": "x" * 24, "HEBBIAN_MEMORY_HTTP_TOKENS_FILE": "/etc/tokens.toml"}
    with pytest.raises(ConfigError, match=r"http\.token and http\.tokens_file are both set"):
        load_settings(env=env)
