"""'and' in a goal: two pieces of work when each side names a different workflow, else one."""

from __future__ import annotations

import datetime as dt

import pytest

from talent.workflows import WORKFLOWS
from turing import Registry
from turing.planning import Catalog, OfflinePlanner

TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def planner() -> OfflinePlanner:
    return OfflinePlanner(Catalog.from_registry(Registry(WORKFLOWS)))


def _steps(planner: OfflinePlanner, goal: str) -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    plan = planner.plan(goal, TODAY)
    return [
        (s.workflow, dict(s.for_each.filters) if s.for_each else {}, s.after) for s in plan.steps
    ]


def test_and_with_a_second_object_is_two_independent_steps(planner: OfflinePlanner) -> None:
    assert _steps(planner, "extract skills from jobs and profiles") == [
        ("job_skills", {}, ()),
        ("profile_skills", {}, ()),
    ]
    assert _steps(planner, "extract skills from profiles and from jobs fetched this week") == [
        ("profile_skills", {}, ()),
        ("job_skills", {"fetched_since": "2026-11-23"}, ()),
    ]


def test_and_between_dependent_work_is_ordered_by_data_flow(planner: OfflinePlanner) -> None:
    goal = "match the top 3 candidates and extract skills from jobs fetched today"
    plan = planner.plan(goal, TODAY)
    assert [(s.id, s.workflow, s.after) for s in plan.steps] == [
        ("s1", "job_skills", ()),
        ("s2", "match_candidates", ("s1",)),
    ]
    assert plan.steps[1].literals() == {"k": 3}


def test_and_inside_one_request_stays_one_step(planner: OfflinePlanner) -> None:
    assert _steps(planner, "extract skills and reasoning from jobs") == [("job_skills", {}, ())]


def test_first_n_limits_rows_when_there_is_no_count_input(planner: OfflinePlanner) -> None:
    plan = planner.plan("extract skills from the first 100 jobs fetched this week", TODAY)
    [step] = plan.steps
    assert step.workflow == "job_skills" and step.for_each is not None
    assert (step.for_each.limit, dict(step.for_each.filters)) == (
        100,
        {"fetched_since": "2026-11-23"},
    )
    matched = planner.plan("match the first 3 candidates", TODAY)
    assert matched.steps[0].literals() == {"k": 3}  # a count input wins
