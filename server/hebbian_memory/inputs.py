"""Validation of caller input. Every rejection says what to send instead; nothing is changed by a rejected call."""

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hebbian_memory.config import LimitSettings
from hebbian_memory.errors import InvalidInputError

__all__ = [
    "DEFAULT_PROJECT",
    "MAX_PROJECT_CHARS",
    "content_hash",
    "count",
    "ids",
    "metadata",
    "project",
    "tags",
    "text",
    "unit_interval",
    "when",
]

# C0 controls other than tab, newline and carriage return have no place in remembered text.
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
DEFAULT_PROJECT = "default"
MAX_PROJECT_CHARS = 256
_DATE_HINT = "an ISO 8601 date or date-time such as 2024-05-01 or 2024-05-01T14:30:00Z"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text(value: str, name: str, max_chars: int) -> str:
    """A non-empty, clean string of at most ``max_chars`` characters (surrounding whitespace dropped)."""
    stripped = value.strip()
    if not stripped:
        raise InvalidInputError(f"{name} is empty. Send the text itself, not blank space.")
    if len(stripped) > max_chars:
        raise InvalidInputError(
            f"{name} is {len(stripped)} characters; the limit is {max_chars}. "
            f"Split it into smaller pieces of at most {max_chars} characters, or summarise it."
        )
    if _SURROGATE.search(stripped):
        raise InvalidInputError(f"{name} contains invalid Unicode (an unpaired surrogate). Send valid UTF-8 text.")
    if _BAD_CONTROL.search(stripped):
        raise InvalidInputError(f"{name} contains control characters (such as NUL). Remove them and send it again.")
    return stripped


def tags(
    values: Sequence[str] | None, limits: LimitSettings, clean: Callable[[str], str] = lambda tag: tag
) -> tuple[str, ...]:
    """Tags stripped, passed through ``clean`` (the redactor: before lower-casing, as secrets' shapes are
    case-sensitive), lower-cased and de-duplicated, in the order given."""
    if not values:
        return ()
    if len(values) > limits.max_tags:
        raise InvalidInputError(f"{len(values)} tags given; at most {limits.max_tags} are allowed. Keep the key ones.")
    out: dict[str, None] = {}
    for raw in values:
        tag = clean(text(raw, "a tag", limits.max_tag_chars)).lower()
        out[tag] = None
    return tuple(out)


def metadata(value: Mapping[str, Any] | None, limits: LimitSettings) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as e:
        raise InvalidInputError(
            f"metadata must be a JSON object of plain values (strings, numbers, booleans, lists, objects): {e}"
        ) from e
    size = len(encoded.encode("utf-8"))
    if size > limits.max_metadata_bytes:
        raise InvalidInputError(
            f"metadata is {size} bytes as JSON; the limit is {limits.max_metadata_bytes}. "
            "Keep only small facts there and put long text in the content."
        )
    return dict(value)


def unit_interval(value: float, name: str, *, allow_zero: bool = True) -> float:
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if math.isnan(value) or not low_ok or value > 1.0:
        low = "0" if allow_zero else "just above 0"
        raise InvalidInputError(f"{name} must be a number from {low} to 1, got {value}.")
    return float(value)


def count(value: int, name: str, maximum: int) -> int:
    if not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be between 1 and {maximum}, got {value}.")
    return value


def when(value: str | datetime | None, name: str) -> datetime | None:
    """Parse an ISO 8601 date or date-time; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        raw = value.strip()
        if not raw:
            return None
        try:
            parsed = datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError as e:
            raise InvalidInputError(f"{name} {value!r} is not a date. Use {_DATE_HINT}.") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is in year 0 in UTC
        utc = None
    if utc is None or not 1 <= utc.year <= 9998:
        raise InvalidInputError(
            f"{name} {value!r} is out of range: use a date between the years 1 and 9998, as {_DATE_HINT}."
        )
    return utc


def ids(values: Sequence[int], name: str, maximum: int) -> list[int]:
    """Positive memory ids, de-duplicated in order."""
    if len(values) > maximum:
        raise InvalidInputError(f"{len(values)} ids given in {name}; at most {maximum} per call. Send them in batches.")
    bad = [v for v in values if v < 1 or v > 2**62]
    if bad:
        raise InvalidInputError(f"{name} has invalid ids {bad[:5]}; ids are positive integers returned by remember.")
    return list(dict.fromkeys(values))


def project(value: str) -> str:
    """A project name: a workspace path, or any short label."""
    if not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance] -- forwarded JSON may be anything
        raise InvalidInputError("project must be a string, such as 'default' or a workspace folder's path.")
    return text(value, "project", MAX_PROJECT_CHARS)
