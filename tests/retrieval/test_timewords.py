"""Relative time words resolved against a memory's event date, across month and year ends."""

from datetime import date

import pytest

from hebbian_memory.retrieval.timewords import resolve

FRIDAY = date(2023, 6, 16)


@pytest.mark.parametrize(
    ("text", "today", "named"),
    [
        ("I got mentored yesterday!", FRIDAY, ["15 June 2023 Thursday"]),
        ("Last night was wild", FRIDAY, ["15 June 2023 Thursday"]),
        ("tonight we cook", FRIDAY, ["16 June 2023 Friday"]),
        ("See you tomorrow", FRIDAY, ["17 June 2023 Saturday"]),
        ("Last Friday I went", FRIDAY, ["9 June 2023 Friday"]),  # never today itself
        ("last Saturday was fun", FRIDAY, ["10 June 2023 Saturday"]),
        ("Next Tuesday then", FRIDAY, ["20 June 2023 Tuesday"]),
        ("a couple of days ago", FRIDAY, ["14 June 2023 Wednesday"]),
        ("3 days ago", FRIDAY, ["13 June 2023 Tuesday"]),
        ("We went last week", FRIDAY, ["June 2023"]),
        ("two weeks ago", date(2023, 6, 5), ["May 2023"]),
        ("last month", date(2023, 1, 10), ["December 2022"]),
        ("next month", date(2023, 12, 31), ["January 2024"]),
        ("3 months ago", date(2023, 1, 31), ["October 2022"]),
        ("a month ago", FRIDAY, ["May 2023"]),
        ("last year", FRIDAY, ["2022"]),
        ("yesterday, and again yesterday, then last year", date(2024, 3, 1), ["29 February 2024 Thursday", "2023"]),
        ("nothing about time here, just lasting weeks", FRIDAY, []),
        ("yesterday, 3 days ago, last month, last Monday, last year", date(1, 1, 1), []),  # none before year 1
        (
            "see you tomorrow, next month, next year",
            date(9998, 12, 31),
            ["1 January 9999 Friday", "January 9999", "9999"],
        ),
    ],
)
def test_relative_time_words_name_days_months_and_years(text: str, today: date, named: list[str]) -> None:
    assert resolve(text, today) == named
