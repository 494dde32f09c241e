"""The simulator's planning responder, and the LLM planner end to end against it."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest

from talent.workflows import WORKFLOWS
from turing import Executor, Registry
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.planning import Catalog, LLMPlanner, PlanError, parse_plan
from turing.planning.llm import MARKER
from turing.providers import create
from turing.sim import SchemaResponder
from turing.sim.planning import PlanningResponder, is_planning, spoil

from .conftest import MakeSim

GOAL = "Extract skills from all jobs fetched today, then match top 5 candidates for each role"
TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.from_registry(Registry(WORKFLOWS))


def _messages(catalog: Catalog, feedback: str = "") -> list[dict[str, Any]]:
    text = (
        f"Goal: {GOAL}\nToday (UTC): {TODAY}\nRegistered workflows (JSON, one line):\n"
        f"{json.dumps(catalog.as_list())}\n\nRules: ...{feedback}"
    )
    return [{"role": "system", "content": MARKER}, {"role": "user", "content": text}]


def test_planning_requests_are_recognised_and_others_pass_through(catalog: Catalog) -> None:
    responder = PlanningResponder(SchemaResponder())
    assert is_planning(_messages(catalog), None)
    assert is_planning([{"role": "user", "content": "x"}], {"title": "TuringPlan"})
    plain = [{"role": "user", "content": "name: Ada"}]
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    assert not is_planning(plain, schema)
    assert responder.respond("m", plain, schema, random.Random(1)) == {"name": "Ada"}


def test_answers_are_the_offline_plan_after_the_bad_ones(catalog: Catalog) -> None:
    responder = PlanningResponder(SchemaResponder(), bad_plans=2)
    answers = [responder.respond("m", _messages(catalog), None, random.Random(0)) for _ in range(3)]
    for bad in answers[:2]:
        with pytest.raises(PlanError):
            parse_plan(bad, catalog)
    good = parse_plan(answers[2], catalog)
    assert [s.workflow for s in good.steps] == ["job_skills", "match_candidates"]
    assert good.steps[0].for_each is not None
    assert good.steps[0].for_each.filters == {"fetched_since": TODAY.isoformat()}


def test_spoiled_plans_fail_validation_for_the_stated_reason(catalog: Catalog) -> None:
    good = PlanningResponder(SchemaResponder()).respond(
        "m", _messages(catalog), None, random.Random(0)
    )
    with pytest.raises(PlanError, match="forward reference"):
        parse_plan(spoil(good, "forward_reference"), catalog)
    with pytest.raises(PlanError, match="s99"):
        parse_plan(spoil(good, "dangling_reference"), catalog)


def _planner(sim_url: str, catalog: Catalog, max_reasks: int) -> LLMPlanner:
    settings = ActorSettings("ollama", "qwen2.5:7b", base_url=sim_url)
    actor = ManagedActor(create(settings), settings)
    executor = Executor({"planner": actor})
    return LLMPlanner(executor, "planner", catalog, max_reasks=max_reasks)


def test_llm_planner_reasks_an_invalid_plan(make_sim: MakeSim, catalog: Catalog) -> None:
    sim = make_sim("fast", bad_plans=1)
    planner = _planner(sim.url, catalog, max_reasks=2)
    plan = planner.plan(GOAL, TODAY)
    assert [s.workflow for s in plan.steps] == ["job_skills", "match_candidates"]
    assert plan.steps[1].literals() == {"k": 5}
    assert len(planner.attempts) == 2
    assert any("forward reference" in e for e in planner.attempts[0].errors)
    assert planner.attempts[1].errors == []
    assert planner.usage.calls == 2 and sim.stats()["calls"] == 2


def test_llm_planner_gives_up_after_its_reasks(make_sim: MakeSim, catalog: Catalog) -> None:
    sim = make_sim("fast", bad_plans=5)
    planner = _planner(sim.url, catalog, max_reasks=1)
    with pytest.raises(PlanError, match="still invalid after 1 re-ask"):
        planner.plan(GOAL, TODAY)
    assert len(planner.attempts) == 2
