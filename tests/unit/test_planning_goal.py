"""Reading a goal: parts ("..., then ..."), time phrases relative to a fixed `today`, counts."""

from __future__ import annotations

import datetime as dt

import pytest

from turing.planning.goal import Clause, split_goal

TUESDAY = dt.date(2026, 11, 24)  # the talent sample's "now"
MONDAY = dt.date(2026, 11, 23)
SUNDAY = dt.date(2026, 11, 29)


def one(goal: str, today: dt.date = TUESDAY) -> Clause:
    [clause] = split_goal(goal, today)
    return clause


def test_the_fixed_days_are_what_the_tests_assume() -> None:
    assert (MONDAY.weekday(), TUESDAY.weekday(), SUNDAY.weekday()) == (0, 1, 6)


@pytest.mark.parametrize(
    ("phrase", "today", "since", "before"),
    [
        ("fetched today", TUESDAY, TUESDAY, None),
        ("fetched today", MONDAY, MONDAY, None),
        ("fetched yesterday", TUESDAY, MONDAY, TUESDAY),
        ("fetched yesterday", dt.date(2026, 12, 1), dt.date(2026, 11, 30), dt.date(2026, 12, 1)),
        ("fetched since Monday", TUESDAY, MONDAY, None),
        ("fetched since Monday", MONDAY, MONDAY, None),  # today is Monday: today
        ("fetched since Monday", SUNDAY, MONDAY, None),
        ("fetched since last monday", SUNDAY, MONDAY, None),
        ("since Wednesday", TUESDAY, dt.date(2026, 11, 18), None),  # the latest Wednesday
        ("fetched this week", TUESDAY, MONDAY, None),
        ("fetched this week", MONDAY, MONDAY, None),
        ("fetched this week", SUNDAY, MONDAY, None),
        ("fetched in the last 7 days", TUESDAY, dt.date(2026, 11, 18), None),
        ("fetched last 7 days", TUESDAY, dt.date(2026, 11, 18), None),
        ("in the past seven days", TUESDAY, dt.date(2026, 11, 18), None),
        ("in the last 1 day", TUESDAY, TUESDAY, None),
        ("in the last 30 days", TUESDAY, dt.date(2026, 10, 26), None),
        ("fetched since 2026-11-01", TUESDAY, dt.date(2026, 11, 1), None),
        ("added after 2025-02-28", TUESDAY, dt.date(2025, 2, 28), None),
    ],
)
def test_time_phrases(phrase: str, today: dt.date, since: dt.date, before: dt.date | None) -> None:
    clause = one(f"extract skills from jobs {phrase}", today)
    assert clause.time is not None, phrase
    assert (clause.time.since, clause.time.before) == (since, before)
    assert clause.time.phrase.lower() in phrase.lower()
    # the phrase is not left in the words matched against workflows
    assert clause.words == "extract skills from jobs"
    assert clause.text == f"extract skills from jobs {phrase}"


def test_the_last_n_days_end_today_and_include_it() -> None:
    clause = one("jobs from the last 7 days", TUESDAY)
    assert clause.time is not None and clause.time.since is not None
    days = (TUESDAY - clause.time.since).days + 1
    assert days == 7


def test_describe_says_the_range() -> None:
    clause = one("jobs fetched yesterday", TUESDAY)
    assert clause.time is not None
    assert clause.time.describe() == "'fetched yesterday' = from 2026-11-23 before 2026-11-24"


def test_no_time_phrase() -> None:
    clause = one("extract skills from every job")
    assert clause.time is None and clause.count is None
    assert clause.words == "extract skills from every job"


def test_an_invalid_date_is_not_a_time_phrase() -> None:
    assert one("jobs fetched since 2026-13-45").time is None


def test_today_defaults_to_the_utc_date() -> None:
    clause = one("jobs fetched today", None)  # type: ignore[arg-type]
    assert clause.time is not None and clause.time.since is not None
    assert abs((clause.time.since - dt.datetime.now(dt.UTC).date()).days) <= 1


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("match top 5 candidates", 5),
        ("match the five best candidates", 5),
        ("match the best 3 candidates", 3),
        ("match the 10 best candidates", 10),
        ("match top twenty candidates", 20),
        ("match the first 2 candidates", 2),
    ],
)
def test_counts(text: str, count: int) -> None:
    clause = one(text)
    assert clause.count == count
    assert "candidates" in clause.words and str(count) not in clause.words
    assert "top" not in clause.words.split() and "best" not in clause.words.split()


@pytest.mark.parametrize(
    "goal",
    [
        "Extract skills from all jobs fetched today, then match top 5 candidates for each role",
        "Extract skills from all jobs fetched today then match top 5 candidates for each role",
        "Extract skills from all jobs fetched today; match top 5 candidates for each role",
        "Extract skills from all jobs fetched today. Match top 5 candidates for each role.",
        "Extract skills from all jobs fetched today and then match top 5 candidates for each role",
        "Extract skills from all jobs fetched today, after that match top 5 candidates for each "
        "role",
    ],
)
def test_the_seed_goal_splits_in_two(goal: str) -> None:
    first, second = split_goal(goal, TUESDAY)
    assert first.words == "Extract skills from all jobs"
    assert first.time is not None and first.time.since == TUESDAY and first.count is None
    assert second.words.lower() == "match candidates for each role"
    assert second.count == 5 and second.time is None


def test_after_doing_splits_too() -> None:
    first, second = split_goal(
        "Match the top 5 candidates for each job, after extracting skills from jobs fetched "
        "since Monday",
        TUESDAY,
    )
    assert first.count == 5 and first.time is None
    assert second.words == "extracting skills from jobs"
    assert second.time is not None and second.time.since == MONDAY


def test_empty_parts_are_dropped() -> None:
    assert [c.words for c in split_goal("  extract skills;; then , then match  ", TUESDAY)] == [
        "extract skills",
        "match",
    ]
