"""Schedules: the `[schedules.NAME]` model, cron tick arithmetic, parsing from a config."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from turing.schedules import (
    Schedule,
    ScheduleTable,
    parse_schedules,
    resolve_workflows,
    schedules_from_config,
)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_table_defaults_and_normalised_cron() -> None:
    table = ScheduleTable(cron="  */5  *  * * * ")
    assert table.cron == "*/5 * * * *"
    assert (table.workflows, table.max_tasks, table.discover, table.timezone) == (
        None,
        None,
        True,
        "UTC",
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "*/5 * * *"}, "not a cron expression"),
        ({"cron": "every five minutes"}, "not a cron expression"),
        ({"cron": ""}, "not a cron expression"),
        ({"cron": "* * * * *", "max_tasks": 0}, "greater than 0"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"cron": "* * * * *", "workflows": []}, "empty list"),
        ({"cron": "* * * * *", "every": 5}, "Extra inputs"),
        ({}, "Field required"),
    ],
)
def test_table_refuses_bad_entries(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleTable.model_validate(fields)


def test_schedule_validates_like_the_table() -> None:
    with pytest.raises(ValidationError, match="not a cron expression"):
        Schedule("bad", "61 * * * *")
    with pytest.raises(ValidationError, match="empty list"):  # () is not "every workflow"
        Schedule("none", "@daily", ())


@pytest.mark.parametrize(
    ("cron", "now", "latest", "following"),
    [
        ("*/5 * * * *", "2024-01-01T00:07:30", "2024-01-01T00:05:00", "2024-01-01T00:10:00"),
        # exactly on a tick: that tick is due an instant later, the latest is the one before
        ("*/5 * * * *", "2024-01-01T00:05:00", "2024-01-01T00:00:00", "2024-01-01T00:10:00"),
        ("*/5 * * * *", "2024-01-01T00:05:00.001", "2024-01-01T00:05:00", "2024-01-01T00:10:00"),
        ("0 2 * * *", "2024-01-01T14:00:00", "2024-01-01T02:00:00", "2024-01-02T02:00:00"),
        ("@hourly", "2024-01-01T14:59:59", "2024-01-01T14:00:00", "2024-01-01T15:00:00"),
        # a sixth field is seconds
        ("* * * * * */10", "2024-01-01T00:00:25", "2024-01-01T00:00:20", "2024-01-01T00:00:30"),
        ("* * * * * *", "2024-01-01T00:00:25.5", "2024-01-01T00:00:25", "2024-01-01T00:00:26"),
    ],
)
def test_latest_and_next_tick(cron: str, now: str, latest: str, following: str) -> None:
    s = Schedule("s", cron)
    assert s.latest_tick(ts(now)) == ts(latest)
    assert s.next_tick(ts(now)) == ts(following)


def test_missed_ticks_collapse_to_the_latest() -> None:
    """Hours without a worker: the only tick considered is the latest one."""
    s = Schedule("s", "*/5 * * * *")
    last_fired = ts("2024-01-01T00:05:00")
    now = ts("2024-01-01T03:12:00")  # 37 ticks later
    assert s.latest_tick(now) == ts("2024-01-01T03:10:00")
    assert s.latest_tick(now) > last_fired


def test_timezone_is_honoured_across_daylight_saving() -> None:
    berlin = Schedule("s", "0 2 * * *", timezone="Europe/Berlin")
    # 2024-03-31 has no 02:00 in Berlin (clocks jump 02:00 -> 03:00); the day after does
    after = berlin.next_tick(ts("2024-03-31T12:00:00"))
    assert after == ts("2024-04-01T00:00:00")  # 02:00 CEST is 00:00 UTC
    winter = berlin.next_tick(ts("2024-01-10T12:00:00"))
    assert winter == ts("2024-01-11T01:00:00")  # 02:00 CET is 01:00 UTC


def test_parse_schedules_from_tables_and_dicts() -> None:
    tables = {
        "skills": {"cron": "*/5 * * * *", "workflows": ["job_skills"], "max_tasks": 500},
        "nightly": ScheduleTable(cron="0 2 * * *", discover=False),
    }
    nightly, skills = parse_schedules(tables)  # sorted by name
    assert skills == Schedule("skills", "*/5 * * * *", ("job_skills",), 500, True, "UTC")
    assert nightly == Schedule("nightly", "0 2 * * *", None, None, False, "UTC")
    assert skills.as_dict()["workflows"] == ["job_skills"]
    assert "at most 500 new per workflow per tick" in skills.describe()
    assert "process queued every workflow" in nightly.describe()


def test_schedules_from_config_with_and_without_the_field() -> None:
    config = SimpleNamespace(schedules={"a": {"cron": "@daily"}})
    assert [s.name for s in schedules_from_config(config)] == ["a"]
    assert schedules_from_config(SimpleNamespace()) == []


def test_the_config_model_takes_schedules() -> None:
    """`Config.schedules: dict[str, ScheduleTable]` (see turing.schedules)."""
    from turing.config import Config

    config = Config.model_validate({"schedules": {"a": {"cron": "@daily", "max_tasks": 3}}})
    [s] = schedules_from_config(config)
    assert (s.name, s.cron, s.max_tasks) == ("a", "@daily", 3)
    with pytest.raises(ValidationError, match="workflow"):  # a typo is an error, not ignored
        Config.model_validate({"schedules": {"a": {"cron": "@daily", "workflow": ["x"]}}})


def test_resolve_workflows_turns_aliases_into_names() -> None:
    names = {"1121": "job_skills", "job_skills": "job_skills", "other": "other"}

    def resolve(key: str) -> SimpleNamespace:
        return SimpleNamespace(name=names[key])

    [s, t] = resolve_workflows(
        [Schedule("s", "@daily", ("1121", "job_skills", "other")), Schedule("t", "@daily")],
        resolve,  # type: ignore[arg-type]
    )
    assert s.workflows == ("job_skills", "other")
    assert t.workflows is None


def test_an_unknown_workflow_names_its_schedule() -> None:
    from turing.errors import ConfigError, UnknownWorkflowError

    def resolve(key: str) -> SimpleNamespace:
        raise UnknownWorkflowError(key, ["job_skills"])

    with pytest.raises(ConfigError, match=r"\[schedules.s\] workflows: unknown workflow 'x'"):
        resolve_workflows([Schedule("s", "@daily", ("x",))], resolve)  # type: ignore[arg-type]
