"""The offline planner never drops a condition it cannot express: a condition that narrows the
rows ("draft replies for urgent ones") is refused with a message naming it and saying how to
express it (a filter the workflow's source declares); an ordering it cannot honour is named
in the plan's notes. The LLM planner's failures carry its last errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel

from talent.workflows import WORKFLOWS
from turing import Executor, Registry, Sink, Source, SourceFilter, Workflow
from turing.actors.base import ModelRequest, ModelResponse, Usage
from turing.planning import CannotPlan, Catalog, LLMPlanner, OfflinePlanner, Plan, PlanError
from turing.steps import LLMStep

TODAY = dt.date(2026, 11, 24)


class Ticket(BaseModel):
    ticket_id: int
    body: str


class Reply(BaseModel):
    ticket_id: int
    reply: str


def _drafts(filters: dict[str, SourceFilter] | None = None) -> Workflow:
    return Workflow(
        "draft_replies",
        description="Draft a reply to each support ticket.",
        input=Ticket,
        output=Reply,
        subject_key="ticket_id",
        source=Source(sql="SELECT ticket_id, body, priority FROM tickets", filters=filters or {}),
        sink=Sink.sql("INSERT INTO replies (ticket_id, reply) VALUES (:ticket_id, :reply)"),
        steps=[LLMStep("draft", actor="m", prompt="Reply to: {{ body }}")],
    )


TICKETS = Catalog.from_registry(Registry([_drafts()]))
WITH_PRIORITY = Catalog.from_registry(
    Registry(
        [
            _drafts(
                {
                    "priority": SourceFilter(
                        "priority", "=", "string", "Only tickets of this priority."
                    )
                }
            )
        ]
    )
)


def _refusal(goal: str, catalog: Catalog = TICKETS) -> str:
    with pytest.raises(CannotPlan) as caught:
        OfflinePlanner(catalog).plan(goal, TODAY)
    return str(caught.value)


@pytest.mark.parametrize(
    ("goal", "condition"),
    [
        ("draft replies for urgent ones", "urgent ones"),
        ("draft replies for the urgent tickets", "urgent"),
        ("draft replies only for tickets from VIP customers", "only"),
        ("draft replies for tickets that are still open", "that are"),
        ("draft replies for tickets whose priority is high", "whose"),
        ("draft replies for tickets where the customer is angry", "where"),
        ("draft replies for tickets with more than 3 messages", "more than"),
        ("draft replies for tickets except spam", "except"),
        ("draft replies for high priority tickets", "high priority"),
    ],
)
def test_a_narrowing_condition_is_refused_naming_it(goal: str, condition: str) -> None:
    message = _refusal(goal)
    assert condition in message.lower()
    assert "draft_replies" in message
    assert "filter" in message and "declares" in message  # how to express it
    assert "turing plan --file" in message or "--model" in message


def test_the_refusal_lists_the_filters_the_source_declares() -> None:
    message = _refusal("draft replies for urgent ones", WITH_PRIORITY)
    assert "priority" in message and "Only tickets of this priority." in message


def test_a_condition_in_a_later_part_is_refused_too() -> None:
    catalog = Catalog.from_registry(Registry(WORKFLOWS))
    with pytest.raises(CannotPlan, match="senior"):
        OfflinePlanner(catalog).plan(
            "extract skills from jobs fetched today, then match top 5 candidates "
            "for the senior roles only",
            TODAY,
        )


@pytest.mark.parametrize(
    "goal",
    [
        "draft replies for all tickets",
        "draft replies for each ticket",
        "draft replies for the first 10 tickets",
    ],
)
def test_goals_without_a_condition_still_plan(goal: str) -> None:
    plan = OfflinePlanner(TICKETS).plan(goal, TODAY)
    assert [s.workflow for s in plan.steps] == ["draft_replies"]


def test_a_word_the_workflow_itself_uses_is_not_a_condition() -> None:
    urgent = Workflow(
        "triage_urgent",
        description="Decide whether an urgent support ticket needs a human.",
        input=Ticket,
        output=Reply,
        subject_key="ticket_id",
        source=Source(sql="SELECT ticket_id, body FROM tickets"),
        steps=[LLMStep("triage", actor="m", prompt="{{ body }}")],
    )
    plan = OfflinePlanner(Catalog.from_registry(Registry([urgent]))).plan(
        "triage urgent tickets", TODAY
    )
    assert [s.workflow for s in plan.steps] == ["triage_urgent"]


def test_an_ordering_it_cannot_honour_is_a_note() -> None:
    plan = OfflinePlanner(TICKETS).plan("draft replies for tickets, newest first", TODAY)
    assert [s.workflow for s in plan.steps] == ["draft_replies"]
    assert any("ignored" in n and "newest first" in n for n in plan.notes), plan.notes


# ------------------------------------------------------------------- the LLM planner
class _Answers:
    """An actor that answers each call with the next text."""

    identity = "fake:planner"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        text = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return ModelResponse(text, Usage(calls=1))


def _plan_with(answers: list[str], max_reasks: int = 1) -> Plan:
    actor = _Answers(answers)
    planner = LLMPlanner(Executor({"p": actor}), "p", TICKETS, max_reasks=max_reasks)
    return planner.plan("draft replies", TODAY)


def test_llm_planner_giving_up_on_schema_violations_names_them() -> None:
    bad: dict[str, Any] = {"goal": "draft replies", "steps": [{"id": "s1", "workflow": "nope"}]}
    with pytest.raises(CannotPlan) as caught:
        _plan_with([json.dumps(bad)])
    message = str(caught.value)
    assert "last errors" in message, message
    assert "$.steps[0]" in message and "nope" in message, message  # the last violations
    assert "re-ask" in message


def test_llm_planner_giving_up_on_invalid_plans_leads_with_the_last_errors() -> None:
    step = {"id": "s1", "workflow": "draft_replies", "inputs": {}, "after": ["s9"]}
    step["for_each"] = {"filters": {}}
    with pytest.raises(PlanError) as caught:
        _plan_with([json.dumps({"goal": "draft replies", "steps": [step]})])
    message = str(caught.value)
    assert "s9" in message
    assert message.index("still invalid") < message.index("s9")
