"""Relative time words resolved against a memory's event time: "yesterday" in a memory of 16 June 2023 means 15
June 2023, so a question about 15 June finds it (English)."""

import functools
import re
from datetime import date, timedelta

__all__ = ["day_words", "month_words", "resolve"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "couple": 2, "few": 3}
_RELATIVE = re.compile(
    r"\b(?:(?P<word>yesterday|last night|today|tonight|this (?:morning|afternoon|evening)|tomorrow)"
    r"|(?P<dir>last|next) (?P<span>week|weekend|month|year|" + "|".join(_WEEKDAYS) + ")"
    r"|(?:a )?(?P<count>\d{1,2}|" + "|".join(_COUNTS) + r") (?:of )?(?P<unit>day|week|month|year)s? ago)\b",
    re.IGNORECASE,
)
_DAY_OFFSETS = {"yesterday": -1, "last night": -1, "tomorrow": 1}
_ANCHORS = ("yesterday", "last", "next", "ago", "today", "tonight", "this ", "tomorrow")


@functools.lru_cache(maxsize=4096)  # memories share days: a rebuild formats each day once
def day_words(day: date) -> str:
    """'8 May 2023 Monday': how people name days in questions."""
    return f"{day.day} {day:%B} {day.year} {day:%A}"


def month_words(day: date) -> str:
    return f"{day:%B} {day.year}"


def resolve(text: str, today: date) -> list[str]:
    """What the relative time expressions of ``text`` name, seen from ``today``, in words: a day for "yesterday",
    "last Friday" or "3 days ago"; a month for "last week", "next month" or "two weeks ago" (a week is vague);
    a year for "last year". Each at most once, in order."""
    found: list[str] = []
    lower = text.lower()
    if not any(anchor in lower for anchor in _ANCHORS):  # most texts: a few substring scans instead of the regex
        return found
    for m in _RELATIVE.finditer(text):
        try:
            found.append(_named(m, today))
        except OverflowError:  # outside years 1-9999 (an event time may be in year 1)
            continue
    return list(dict.fromkeys(found))


def _named(m: re.Match[str], today: date) -> str:
    if m["word"]:
        return day_words(today + timedelta(days=_DAY_OFFSETS.get(m["word"].lower(), 0)))
    if m["dir"]:
        return _shifted(today, m["dir"].lower() == "next", m["span"].lower())
    count = m["count"].lower()
    return _ago(today, int(count) if count.isdigit() else _COUNTS[count], m["unit"].lower())


def _shifted(today: date, forward: bool, span: str) -> str:
    sign = 1 if forward else -1
    if span in _WEEKDAYS:  # the nearest such day before (or after) today, never today itself
        gap = (_WEEKDAYS.index(span) - today.weekday()) * sign % 7 or 7
        return day_words(today + timedelta(days=sign * gap))
    if span in ("week", "weekend"):
        return month_words(today + timedelta(days=sign * 7))
    if span == "month":
        return month_words(_month_step(today, sign))
    return _year(today.year + sign)


def _ago(today: date, n: int, unit: str) -> str:
    if unit == "day":
        return day_words(today - timedelta(days=n))
    if unit == "week":
        return month_words(today - timedelta(days=7 * n))
    if unit == "month":
        back = today
        for _ in range(n):
            back = _month_step(back, -1)
        return month_words(back)
    return _year(today.year - n)


def _year(year: int) -> str:
    if not 1 <= year <= 9999:
        raise OverflowError(f"year {year} is out of range")
    return str(year)


def _month_step(day: date, sign: int) -> date:
    """The first day of the month before (sign -1) or after (+1) ``day``'s."""
    if sign < 0:
        return (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
