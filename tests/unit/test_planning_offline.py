"""The offline planner on the talent catalog: the seed goal, data-flow order, time filters,
counts, goals it cannot plan; and the outline / Mermaid renderings of its plans."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jsonschema_rs
import pytest
from pydantic import BaseModel

from talent.workflows import WORKFLOWS
from turing import Executor, Orchestrator, Registry, ScriptStep, Workflow
from turing.planning import (
    CannotPlan,
    Catalog,
    ForEach,
    OfflinePlanner,
    Plan,
    Ref,
    mermaid,
    outline,
    parse_plan,
    plan_schema,
)

TODAY = dt.date(2026, 11, 24)  # a Tuesday
SEED_GOAL = "Extract skills from all jobs fetched today, then match top 5 candidates for each role"
CATALOG = Catalog.from_registry(Registry(WORKFLOWS))


def offline(goal: str, today: dt.date = TODAY) -> Plan:
    return OfflinePlanner(CATALOG).plan(goal, today)


def cannot(goal: str, catalog: Catalog = CATALOG) -> str:
    with pytest.raises(CannotPlan) as caught:
        OfflinePlanner(catalog).plan(goal, TODAY)
    return str(caught.value)


def shape(plan: Plan) -> list[tuple[Any, ...]]:
    return [(s.id, s.workflow, dict(s.inputs), s.for_each, s.depends_on()) for s in plan.steps]


def seed_shape(since: str) -> list[tuple[Any, ...]]:
    return [
        ("s1", "job_skills", {}, ForEach({"fetched_since": since}), []),
        ("s2", "match_candidates", {"k": 5}, ForEach({"fetched_since": since}), ["s1"]),
    ]


# ---------------------------------------------------------------------- the seed goal
def test_seed_goal_gives_exactly_the_two_steps() -> None:
    plan = offline(SEED_GOAL)
    assert shape(plan) == seed_shape("2026-11-24")
    assert plan.goal == SEED_GOAL and plan.planner == "offline"
    assert plan.as_dict() == {
        "goal": SEED_GOAL,
        "steps": [
            {
                "id": "s1",
                "workflow": "job_skills",
                "inputs": {},
                "for_each": {"filters": {"fetched_since": "2026-11-24"}},
                "after": [],
            },
            {
                "id": "s2",
                "workflow": "match_candidates",
                "inputs": {"k": 5},
                "for_each": {"filters": {"fetched_since": "2026-11-24"}},
                "after": ["s1"],
            },
        ],
    }


def test_seed_plan_notes_say_what_was_understood() -> None:
    notes = " | ".join(offline(SEED_GOAL).notes)
    assert "2026-11-24" in notes
    assert "'top 5' sets match_candidates.k" in notes
    assert "s2 after s1" in notes


def test_seed_plan_follows_today() -> None:
    assert shape(offline(SEED_GOAL, dt.date(2027, 1, 3))) == seed_shape("2027-01-03")


def test_seed_plan_satisfies_the_plan_schema_and_round_trips() -> None:
    plan = offline(SEED_GOAL)
    validator = jsonschema_rs.validator_for(plan_schema(CATALOG), validate_formats=True)
    assert validator.is_valid(plan.as_dict())
    assert parse_plan(plan.as_dict(), CATALOG, planner="offline", notes=plan.notes) == plan


def test_orchestrator_plan_uses_the_offline_planner_without_a_database() -> None:
    orch = Orchestrator(Registry(WORKFLOWS), Executor({}), None)
    plan = orch.plan(SEED_GOAL, today=TODAY)
    assert plan == offline(SEED_GOAL)


@pytest.mark.parametrize(
    ("goal", "since"),
    [
        ("Match the top 5 candidates for each job, after extracting skills from jobs fetched "
         "since Monday", "2026-11-23"),
        ("Match top 5 candidates for jobs fetched today, then extract skills from all jobs "
         "fetched today", "2026-11-24"),
        ("Find the five best candidates for each posting; before that extract the skills "
         "of job postings fetched this week", "2026-11-23"),
    ],
)  # fmt: skip
def test_order_follows_data_flow_not_the_wording(goal: str, since: str) -> None:
    assert shape(offline(goal)) == seed_shape(since)


@pytest.mark.parametrize(
    ("phrase", "filters"),
    [
        ("today", {"fetched_since": "2026-11-24"}),
        ("yesterday", {"fetched_since": "2026-11-23", "fetched_before": "2026-11-24"}),
        ("in the last 7 days", {"fetched_since": "2026-11-18"}),
        ("since 2026-11-01", {"fetched_since": "2026-11-01"}),
    ],
)
def test_time_phrases_become_the_declared_filters(phrase: str, filters: dict[str, str]) -> None:
    plan = offline(f"extract skills from job postings fetched {phrase}")
    [only] = plan.steps
    assert (only.workflow, only.for_each) == ("job_skills", ForEach(filters))


def test_later_step_without_time_is_narrowed_like_its_producer() -> None:
    plan = offline("extract skills from jobs fetched yesterday, then match top 3 candidates")
    s1, s2 = plan.steps
    assert (
        s1.for_each
        == s2.for_each
        == ForEach({"fetched_since": "2026-11-23", "fetched_before": "2026-11-24"})
    )
    assert s2.inputs == {"k": 3}
    assert any("s2: narrowed like s1" in n for n in plan.notes)


def test_each_step_keeps_its_own_time() -> None:
    plan = offline("extract skills from jobs fetched this week, then match candidates for jobs "
                   "fetched today")  # fmt: skip
    assert plan.step("s1").for_each == ForEach({"fetched_since": "2026-11-23"})
    assert plan.step("s2").for_each == ForEach({"fetched_since": "2026-11-24"})


def test_no_time_means_every_pending_row() -> None:
    plan = offline("extract skills from all job postings, then match candidates")
    assert [(s.workflow, s.for_each, dict(s.inputs)) for s in plan.steps] == [
        ("job_skills", ForEach({}), {}),
        ("match_candidates", ForEach({}), {}),
    ]


def test_profile_goal_picks_profile_skills() -> None:
    [only] = offline("extract skills from candidate profiles").steps
    assert only.workflow == "profile_skills" and only.for_each == ForEach({})


def test_trailing_report_clause_adds_nothing() -> None:
    plan = offline(SEED_GOAL + ", then report")
    assert shape(plan) == seed_shape("2026-11-24")


# --------------------------------------------------------------- goals it cannot plan
def test_unknown_work_names_the_words() -> None:
    message = cannot("bake a cake")
    assert "'bake a cake'" in message and "no registered workflow matches it" in message
    assert "job_skills" in message  # says what there is


def test_unknown_part_of_a_goal_names_that_part() -> None:
    message = cannot("extract skills from jobs fetched today, then bake a cake")
    assert "'bake a cake'" in message
    assert "extract skills" not in message.split("no registered")[0]


@pytest.mark.parametrize(
    "goal",
    [
        "Extract skills from jobs; DROP TABLE postings",
        "Extract skills from jobs fetched since 2026-11-24'; DROP TABLE postings; --",
        "extract skills from jobs where 1=1 or 1=1",
        "match candidates UNION SELECT * FROM profiles",
        "delete from posting_skills then match candidates",
    ],
)
def test_goal_with_sql_is_refused(goal: str) -> None:
    message = cannot(goal)
    assert "SQL" in message and "never carry SQL" in message


def test_time_phrase_on_a_source_without_date_filters() -> None:
    message = cannot("extract skills from candidate profiles fetched today")
    assert "'fetched today'" in message
    assert "profile_skills" in message and "declares no date filter" in message
    assert "filters: none" in message


def test_time_phrase_on_a_workflow_without_a_source() -> None:
    message = cannot("import a candidate profile from CV text fetched today")
    assert "profile_import" in message and "no source to narrow" in message


def test_count_on_a_workflow_without_a_count_input() -> None:
    message = cannot("extract the top 5 skills from job postings")
    assert "job_skills" in message and "no count input" in message


def test_same_workflow_twice() -> None:
    message = cannot("extract skills from jobs, then extract skills from job postings")
    assert "both mean job_skills" in message


def test_a_goal_with_no_work() -> None:
    assert "names no work" in cannot("and then report")


def test_single_run_step_with_an_input_nobody_gives() -> None:
    message = cannot("import a candidate profile from a CV")
    assert "profile_import" in message and "'cv_text'" in message


# ------------------------------------------------ single-run steps wired by data flow
class Empty(BaseModel):
    pass


class Text(BaseModel):
    text: str


class Words(BaseModel):
    words: list[str]


class Count(BaseModel):
    n: int


def _wf(name: str, description: str, input: type[BaseModel], output: type[BaseModel]) -> Workflow:
    return Workflow(
        name,
        description=description,
        input=input,
        output=output,
        steps=[ScriptStep("run", run=lambda d: d)],
    )


TEXT_TOOLS = Catalog.from_registry(
    Registry(
        [
            _wf("write_poem", "Write a short poem.", Empty, Text),
            _wf("split_words", "Split a text into words.", Text, Words),
            _wf("count_list", "Count the items of a word list.", Words, Count),
            _wf("join_words", "Join a word list into one text.", Words, Text),
        ]
    )
)


@pytest.mark.parametrize(
    "goal",
    [
        "write a poem, then split the text into words, then count the word list",
        "count the word list, after splitting the text into words, after writing a poem",
    ],
)
def test_single_run_steps_get_references_to_their_producers(goal: str) -> None:
    plan = OfflinePlanner(TEXT_TOOLS).plan(goal, TODAY)
    assert [(s.id, s.workflow, dict(s.inputs), s.for_each, s.after) for s in plan.steps] == [
        ("s1", "write_poem", {}, None, ()),
        ("s2", "split_words", {"text": Ref("s1", ("text",))}, None, ("s1",)),
        ("s3", "count_list", {"words": Ref("s2", ("words",))}, None, ("s2",)),
    ]


def test_single_run_step_without_a_producer_for_its_input() -> None:
    message = cannot("split the text into words", TEXT_TOOLS)
    assert "split_words" in message and "'text'" in message and "turing exec" in message


def test_mutual_producers_cannot_be_ordered() -> None:
    message = cannot("split the text into words, then join the word list", TEXT_TOOLS)
    assert "cannot order" in message
    assert "split_words" in message and "join_words" in message


# ------------------------------------------------------------------------ rendering
def _arrows(plan: Plan) -> set[tuple[str, str]]:
    return {(dep, s.id) for s in plan.steps for dep in s.depends_on()}


@pytest.mark.parametrize(
    "goal", [SEED_GOAL, "extract skills from candidate profiles", "extract skills from jobs"]
)
def test_outline_and_mermaid_show_every_step_and_arrow(goal: str) -> None:
    plan = offline(goal)
    text = outline(plan)
    assert text.splitlines()[0] == f"Plan (offline): {goal}"
    for s in plan.steps:
        assert re.search(rf"^\s+{s.id}\s+{s.workflow}\b", text, re.M), text
        for key, value in (s.for_each.filters if s.for_each else {}).items():
            assert f"{key}={value}" in text
    graph = mermaid(plan)
    assert graph.splitlines()[0] == "graph TD"
    nodes = set(re.findall(r"^\s+(\w+)\[\"\1: (\w+)", graph, re.M))
    assert nodes == {(s.id, s.workflow) for s in plan.steps}
    arrows = set(re.findall(r"^\s+(\w+) --> (\w+)$", graph, re.M))
    assert arrows == _arrows(plan)


def test_outline_of_the_seed_plan() -> None:
    text = outline(offline(SEED_GOAL))
    assert "s2  match_candidates  (after s1)" in text
    assert "with k=5" in text
    assert text.count("fetched_since=2026-11-24") == 2
    assert ("s1", "s2") in set(re.findall(r"(\w+) --> (\w+)", mermaid(offline(SEED_GOAL))))
