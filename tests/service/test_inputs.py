from datetime import UTC, datetime

import pytest

from hebbian_memory import inputs
from hebbian_memory.config import load_settings
from hebbian_memory.errors import InvalidInputError

LIMITS = load_settings(env={}).limits


def test_text_is_stripped_and_kept_otherwise_unchanged() -> None:
    assert inputs.text("  héllo\n wörld \t", "content", 100) == "héllo\n wörld"


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "empty"), (" \n ", "empty"), ("x" * 101, "limit is 100"), ("a\ud800b", "surrogate"), ("a\x07b", "control")],
)
def test_bad_text_is_rejected_with_advice(value: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        inputs.text(value, "content", 100)


def test_tags_are_lowercased_deduplicated_and_limited() -> None:
    assert inputs.tags(["Work", "work ", "Home"], LIMITS) == ("work", "home")
    with pytest.raises(InvalidInputError, match="at most 32"):
        inputs.tags([f"t{i}" for i in range(33)], LIMITS)
    with pytest.raises(InvalidInputError, match="limit is 64"):
        inputs.tags(["x" * 65], LIMITS)


def test_metadata_must_be_small_plain_json() -> None:
    assert inputs.metadata({"speaker": "Ana", "n": [1, 2]}, LIMITS) == {"speaker": "Ana", "n": [1, 2]}
    with pytest.raises(InvalidInputError, match="bytes as JSON"):
        inputs.metadata({"blob": "x" * 20_000}, LIMITS)
    with pytest.raises(InvalidInputError, match="JSON object"):
        inputs.metadata({"nan": float("nan")}, LIMITS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T14:30:00Z", datetime(2024, 5, 1, 14, 30, tzinfo=UTC)),
        ("2024-05-01T14:30:00+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        (None, None),
    ],
)
def test_dates_parse_to_utc(raw: str | None, expected: datetime | None) -> None:
    assert inputs.when(raw, "since") == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-02-30", "99999-01-01"])
def test_bad_dates_are_rejected_with_the_expected_format(raw: str) -> None:
    with pytest.raises(InvalidInputError, match="ISO 8601"):
        inputs.when(raw, "since")


def test_numbers_out_of_range_are_rejected() -> None:
    with pytest.raises(InvalidInputError):
        inputs.unit_interval(float("nan"), "importance")
    with pytest.raises(InvalidInputError):
        inputs.unit_interval(0.0, "strength", allow_zero=False)
    with pytest.raises(InvalidInputError, match="between 1 and 100"):
        inputs.count(0, "k", 100)
    with pytest.raises(InvalidInputError, match="positive integers"):
        inputs.ids([3, 0], "ids", 10)
    assert inputs.ids([3, 1, 3], "ids", 10) == [3, 1]


@pytest.mark.parametrize("raw", ["0001-01-01T00:00+01:00", "9999-12-31T23:59-05:00", "9999-12-31"])
def test_dates_beyond_what_utc_can_hold_are_refused_with_the_range_to_use(raw: str) -> None:
    with pytest.raises(InvalidInputError, match="between the years 1 and 9998"):
        inputs.when(raw, "event_time")
