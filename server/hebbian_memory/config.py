"""Settings: the only module that reads environment variables or config files.

Defaults live in ``config/default.toml`` (shipped in the wheel as ``hebbian_memory/default.toml``);
a user TOML file, then ``HEBBIAN_MEMORY_*`` environment variables, then explicit overrides
(command-line flags) are layered on top. Everything is read once, by :func:`load_settings`.
"""

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from hebbian_memory.errors import ConfigError

__all__ = [
    "ANSWER_KIND_NAMES",
    "APP_NAME",
    "ENV_PREFIX",
    "MIN_TOKEN_CHARS",
    "SECTIONS",
    "AssociateSettings",
    "HttpSettings",
    "IndexSettings",
    "LexicalSettings",
    "LimitSettings",
    "ModelSettings",
    "PlasticitySettings",
    "PrivacySettings",
    "RecallSettings",
    "Settings",
    "SharingSettings",
    "StorageSettings",
    "bytecode_cache_dir",
    "default_config_path",
    "default_model_cache_dir",
    "load_settings",
]

ENV_PREFIX = "HEBBIAN_MEMORY_"
APP_NAME = "hebbian-memory"

_PACKAGED_DEFAULTS = Path(__file__).with_name("default.toml")
# In a source checkout or editable install the file sits at the repo root instead.
_CHECKOUT_DEFAULTS = Path(__file__).resolve().parents[2] / "config" / "default.toml"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_DTYPES = ("f32", "f16", "i8")
_SOCKETS = ("auto", "tcp")
# What recall.answer_kinds may name (documents tells them apart).
ANSWER_KIND_NAMES = ("time", "quantity", "title")
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class ModelSettings:
    name: str
    threads: int
    batch_size: int
    cache_dir: str


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_content_chars: int
    max_query_chars: int
    max_tags: int
    max_tag_chars: int
    max_metadata_bytes: int
    max_k: int
    max_ids: int
    max_batch: int
    max_result_chars: int


@dataclass(frozen=True, slots=True)
class RecallSettings:
    default_k: int
    candidates: int
    keyword_weight: float
    turn_keyword_weight: float
    exact_filter_limit: int
    entity_keys: list[str]
    entity_boost: float
    answer_boost: float
    answer_kinds: list[str]
    question_penalty: float
    episode_share: float
    duplicate_cosine: float
    residual_share: float
    residual_candidates: int
    relevance_midpoint: float
    turn_relevance_midpoint: float
    relevance_slope: float
    min_relevance: float


@dataclass(frozen=True, slots=True)
class LexicalSettings:
    content_weight: float
    previous_weight: float
    next_weight: float
    date_weight: float
    metadata_weight: float
    metadata_keys: list[str]
    b: float
    k1: float


@dataclass(frozen=True, slots=True)
class IndexSettings:
    dtype: str
    connectivity: int
    expansion_add: int
    expansion_search: int
    save_every_changes: int
    save_every_seconds: float


@dataclass(frozen=True, slots=True)
class AssociateSettings:
    default_strength: float


@dataclass(frozen=True, slots=True)
class PlasticitySettings:
    enabled: bool
    increment: float
    temporal_weight: float
    cycle_hours: float
    decay_l1: float
    decay_l2: float
    decay_l3: float
    floor: float
    l2_min_co_access: int
    l3_min_co_access: int
    l3_min_weight: float
    demote_l3_below: float
    demote_l2_below: float
    max_links_per_memory: int
    max_links: int
    use_window: int
    recall_uses: int
    recall_top: int
    seeds: int
    spread_hops: int
    hop_factor: float
    spread_weight: float
    pass_minutes: float
    replay_count: int
    strength_exp_days: float
    strength_tau_days: float
    strength_power: float
    events_keep_days: float
    events_keep: int
    use_increment: float
    prior_weight: float
    cue_threshold: float
    companion_min: float
    companions: int


@dataclass(frozen=True, slots=True)
class SharingSettings:
    connect_timeout: float
    socket: str


@dataclass(frozen=True, slots=True)
class StorageSettings:
    backend: str  # "duckdb" (a file in the data dir) or "postgres" (a shared database at ``url``)
    url: str


@dataclass(frozen=True, slots=True)
class HttpSettings:
    token: str
    tokens_file: str  # team tokens, one per person, bound to projects (see transport.tokens); "" for none
    allowed_hosts: list[str]
    max_request_mb: int
    max_in_flight_mb: int


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    redact_secrets: bool
    extra_patterns: list[str]
    purge_after_forget: bool


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    log_level: str
    project: str
    project_from_roots: bool
    early_initialize: bool
    fixed_time: datetime | None  # the instant a stopped clock shows (tests, replays); None: the real clock
    model: ModelSettings
    limits: LimitSettings
    recall: RecallSettings
    lexical: LexicalSettings
    index: IndexSettings
    associate: AssociateSettings
    sharing: SharingSettings
    storage: StorageSettings
    http: HttpSettings
    plasticity: PlasticitySettings
    privacy: PrivacySettings

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model.cache_dir)


SECTIONS: dict[str, type[Any]] = {
    "model": ModelSettings,
    "limits": LimitSettings,
    "recall": RecallSettings,
    "lexical": LexicalSettings,
    "index": IndexSettings,
    "associate": AssociateSettings,
    "sharing": SharingSettings,
    "storage": StorageSettings,
    "http": HttpSettings,
    "plasticity": PlasticitySettings,
    "privacy": PrivacySettings,
}
_TOP_LEVEL = ("data_dir", "log_level", "project", "project_from_roots", "early_initialize", "fixed_time")


def bytecode_cache_dir() -> Path:
    """Where compiled Python files are kept when the environment will not have them beside the sources."""
    return platformdirs.user_cache_path(APP_NAME) / "bytecode"


def default_model_cache_dir() -> Path:
    """Where models are kept unless model.cache_dir says otherwise: once per user, shared by every data dir."""
    return platformdirs.user_cache_path(APP_NAME) / "models"


def default_config_path() -> Path:
    """The defaults file: packaged in a wheel, at the repo root in a checkout."""
    return _PACKAGED_DEFAULTS if _PACKAGED_DEFAULTS.exists() else _CHECKOUT_DEFAULTS


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the defaults, a user file, the environment and explicit overrides.

    ``overrides`` uses dotted keys (``"data_dir"``, ``"recall.default_k"``); None values are ignored.
    """
    environ = os.environ if env is None else env
    raw = _read_toml(default_config_path())
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        _merge(raw, _read_toml(config_file), source=str(config_file))
    _apply_env(raw, environ)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value, source="command line")
    return _build(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"Config file not found: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Config file {path} is not valid TOML: {e}") from e


def _merge(base: dict[str, Any], extra: Mapping[str, Any], source: str) -> None:
    for key, value in extra.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{key}] must be a table")
            for sub, sub_value in value.items():  # pyright: ignore[reportUnknownVariableType]
                _set_dotted(base, f"{key}.{sub}", sub_value, source)
        else:
            _set_dotted(base, key, value, source)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    section, _, key = dotted.rpartition(".")
    table: dict[str, Any] = raw[section] if section else raw
    if (section and section not in SECTIONS) or key not in table:
        raise ConfigError(f"{source}: unknown setting {dotted!r}; see config/default.toml for the valid ones")
    table[key] = _coerce(value, table[key], dotted, source)


def _coerce(value: Any, default: Any, dotted: str, source: str) -> Any:
    """Convert ``value`` to the type of the default (environment values arrive as strings)."""
    target: type = type(default)  # pyright: ignore[reportUnknownVariableType, reportMissingTypeArgument] -- a TOML scalar's type
    try:
        if isinstance(value, str) and target is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, str) and target is not str:
            if target is bool:
                return value.strip().lower() in ("1", "true", "yes", "on")
            return target(value.strip())
        if target is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, target):
            raise TypeError
        return value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {dotted} must be a {target.__name__}, got {value!r}") from e


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key in _TOP_LEVEL:
        name = ENV_PREFIX + key.upper()
        if environ.get(name):
            _set_dotted(raw, key, environ[name], source=name)
    for section, table in raw.items():
        if section not in SECTIONS:
            continue
        for key in table:
            name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if name in environ:
                _set_dotted(raw, f"{section}.{key}", environ[name], source=name)


def _build(raw: dict[str, Any]) -> Settings:
    cache_dir = str(raw["model"]["cache_dir"])
    raw["model"]["cache_dir"] = str(Path(cache_dir).expanduser().absolute() if cache_dir else default_model_cache_dir())
    tokens_file = str(raw["http"]["tokens_file"])
    raw["http"]["tokens_file"] = str(Path(tokens_file).expanduser().absolute()) if tokens_file else ""
    sections = {name: cls(**raw[name]) for name, cls in SECTIONS.items()}
    data_dir = Path(raw["data_dir"]).expanduser() if raw["data_dir"] else platformdirs.user_data_path(APP_NAME)
    settings = Settings(
        data_dir=data_dir.absolute(),
        log_level=str(raw["log_level"]).upper(),
        project=str(raw["project"]).strip() or "default",
        project_from_roots=bool(raw["project_from_roots"]),
        early_initialize=bool(raw["early_initialize"]),
        fixed_time=_instant(str(raw["fixed_time"])),
        **sections,
    )
    _validate(settings)
    return settings


def _instant(text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"fixed_time must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z; got {text!r}") from e
    if when.tzinfo is None:
        raise ConfigError(f"fixed_time needs a UTC offset, e.g. 2026-01-01T00:00:00Z; got {text!r}")
    return when.astimezone(UTC)


def _validate(s: Settings) -> None:
    ranges = [
        (s.log_level in _LOG_LEVELS, f"log_level must be one of {', '.join(_LOG_LEVELS)}"),
        (s.index.dtype in _DTYPES, f"index.dtype must be one of {', '.join(_DTYPES)}"),
        (s.sharing.socket in _SOCKETS, f"sharing.socket must be one of {', '.join(_SOCKETS)}"),
        (
            set(s.recall.answer_kinds) <= set(ANSWER_KIND_NAMES),
            f"recall.answer_kinds may hold only {', '.join(ANSWER_KIND_NAMES)}",
        ),
        (s.recall.keyword_weight >= 0, "recall.keyword_weight must be 0 or more"),
        (s.recall.turn_keyword_weight >= 0, "recall.turn_keyword_weight must be 0 or more"),
        (0.0 <= s.recall.residual_share <= 1.0, "recall.residual_share must be between 0 and 1"),
        (s.recall.residual_candidates >= 0, "recall.residual_candidates must be 0 or more"),
        (s.recall.relevance_slope > 0, "recall.relevance_slope must be above 0"),
        (0.0 <= s.recall.min_relevance <= 1.0, "recall.min_relevance must be between 0 and 1"),
        (0.0 < s.recall.duplicate_cosine <= 1.0, "recall.duplicate_cosine must be in (0, 1]"),
        (0.0 < s.associate.default_strength <= 1.0, "associate.default_strength must be in (0, 1]"),
        (
            all(0.0 < r <= 1.0 for r in (s.plasticity.decay_l1, s.plasticity.decay_l2, s.plasticity.decay_l3)),
            "plasticity.decay_l1/l2/l3 must be in (0, 1]",
        ),
        (0.0 <= s.plasticity.increment <= 1.0, "plasticity.increment must be between 0 and 1"),
        (0.0 <= s.plasticity.use_increment <= 1.0, "plasticity.use_increment must be between 0 and 1"),
        (0.0 < s.plasticity.companion_min <= 1.0, "plasticity.companion_min must be in (0, 1]"),
        (0.0 <= s.plasticity.cue_threshold < 1.0, "plasticity.cue_threshold must be in [0, 1)"),
        (0.0 < s.plasticity.temporal_weight <= 1.0, "plasticity.temporal_weight must be in (0, 1]"),
        (s.plasticity.cycle_hours > 0 and s.plasticity.pass_minutes > 0, "plasticity cycle and pass must be > 0"),
        (1 <= s.recall.default_k <= s.limits.max_k, "recall.default_k must be between 1 and limits.max_k"),
        (
            1 <= s.http.max_request_mb <= s.http.max_in_flight_mb,
            "http.max_request_mb must be at least 1 and at most http.max_in_flight_mb",
        ),
    ]
    ranges += [
        (
            s.storage.backend in ("duckdb", "postgres"),
            f'storage.backend must be "duckdb" or "postgres", not {s.storage.backend!r}',
        ),
        (
            s.storage.backend != "postgres" or bool(s.storage.url),
            "storage.url is needed for the postgres backend (postgresql://user:password@host/db)",
        ),
    ]
    problems = [message for ok, message in ranges if not ok]
    for pattern in s.privacy.extra_patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            problems.append(f"privacy.extra_patterns: {pattern!r} is not a regular expression ({e})")
    if s.http.token and s.http.tokens_file:
        problems.append(
            "http.token and http.tokens_file are both set: use one. http.token is one shared token for every "
            "project; http.tokens_file gives each person their own, bound to projects (`hebbian-memory token new`)"
        )
    if s.http.token and len(s.http.token) < MIN_TOKEN_CHARS:
        problems.append(f"http.token must be at least {MIN_TOKEN_CHARS} characters (try: openssl rand -hex 24)")
    for section in (s.limits, s.model, s.index, s.lexical, s.recall, s.sharing, s.plasticity):
        for f in fields(section):
            value = getattr(section, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                problems.append(f"{f.name} must not be negative")
    if problems:
        raise ConfigError("Invalid settings: " + "; ".join(problems))
