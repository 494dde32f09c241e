"""Grading: a grader actor scores the final answer against a rubric; a low score re-asks
with the grader's reasons, a grader on the answering model is refused, every grader call is
recorded as an attempt of `<step>:grade`, and calls reserve their quote in the budget."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from turing import Executor, FakeModel, Grade, LLMStep, ModelRequest, Workflow
from turing.checks import grounded
from turing.errors import WorkflowDefinitionError
from turing.grading import grades


class Item(BaseModel):
    item_id: int
    text: str


class Quote(BaseModel):
    item_id: int
    quote: str


ITEM = {"item_id": 1, "text": "Strong PostgreSQL skills wanted"}


def workflow(grade: Grade, *, max_reasks: int = 2, checks: list[object] | None = None) -> Workflow:
    return Workflow(
        "quotes",
        input=Item,
        output=Quote,
        subject_key="item_id",
        steps=[
            LLMStep(
                "quote",
                prompt="Quote {{ item_id }}: {{ text }}",
                actor="answerer",
                max_reasks=max_reasks,
                grade=grade,
            )
        ],
        checks=checks or [],
    )


GRADE = Grade(actor="grader", rubric="The quote is the key skill of the text.", accept_at=0.7)


def test_a_low_grade_re_asks_with_the_reasons_and_a_good_one_is_accepted() -> None:
    answerer = FakeModel(
        [{"item_id": 1, "quote": "Strong"}, {"item_id": 1, "quote": "PostgreSQL skills"}],
        name="a",
    )
    grader = FakeModel(
        [{"score": 0.2, "reasons": ["'Strong' is not a skill"]}, {"score": 0.9}], name="g"
    )
    result = Executor({"answerer": answerer, "grader": grader}).run_sync(workflow(GRADE), ITEM)
    assert result.ok, result.errors
    assert result.output == {"item_id": 1, "quote": "PostgreSQL skills"}
    reask = answerer.requests[1].messages[-1].content
    assert "graded your answer 0.2" in reask and "'Strong' is not a skill" in reask
    steps = [(a.step, a.number, a.actor) for a in result.attempts]
    assert steps == [
        ("quote", 1, "fake:a"),
        ("quote:grade", 1, "fake:g"),
        ("quote", 2, "fake:a"),
        ("quote:grade", 2, "fake:g"),
    ]
    assert [v.rule for v in result.attempts[0].violations] == ["grade"]
    assert result.attempts[2].ok
    assert grades(result) == [("quote", 0.2), ("quote", 0.9)]
    # the grader saw the rubric, the input and the answer
    sent = grader.requests[0].messages[-1].content
    assert GRADE.rubric in sent and "PostgreSQL" in sent and '"quote": "Strong"' in sent
    assert result.usage.calls == 4


def test_an_answer_graded_low_every_time_fails_the_run() -> None:
    answerer = FakeModel(lambda r: {"item_id": 1, "quote": "Strong"}, name="a")
    grader = FakeModel(lambda r: {"score": 0.1, "reasons": ["no"]}, name="g")
    wf = workflow(GRADE, max_reasks=1)
    result = Executor({"answerer": answerer, "grader": grader}).run_sync(wf, ITEM)
    assert not result.ok and result.output is None
    [error] = result.errors
    assert error.kind == "output_invalid" and error.violations[0].rule == "grade"
    assert len(grader.requests) == 2


def test_a_grader_on_the_answering_model_is_refused_before_any_call() -> None:
    same = FakeModel([], name="m")
    result = Executor({"answerer": same, "grader": same}).run_sync(workflow(GRADE), ITEM)
    assert not result.ok and result.errors[0].kind == "actor"
    assert "does not grade its own answers" in result.errors[0].message
    assert same.requests == [] and result.attempts == []


def test_same_model_grading_can_be_allowed_knowingly() -> None:
    same = FakeModel([{"item_id": 1, "quote": "PostgreSQL"}, {"score": 1}], name="m")
    grade = Grade(actor="grader", rubric="ok", allow_same_model=True)
    result = Executor({"answerer": same, "grader": same}).run_sync(workflow(grade), ITEM)
    assert result.ok and grades(result) == [("quote", 1.0)]


def test_a_failing_check_re_asks_before_the_grader_is_asked() -> None:
    answerer = FakeModel(
        [{"item_id": 1, "quote": "Kubernetes"}, {"item_id": 1, "quote": "PostgreSQL"}], name="a"
    )
    grader = FakeModel([{"score": 4, "reasons": []}], name="g")
    grade = Grade(actor="grader", rubric="ok", scale="1-5", accept_at=4)
    wf = workflow(grade, checks=[grounded("quote", within="text")])
    result = Executor({"answerer": answerer, "grader": grader}).run_sync(wf, ITEM)
    assert result.ok and len(grader.requests) == 1
    assert [a.step for a in result.attempts] == ["quote", "quote", "quote:grade"]


def test_a_grader_answer_that_breaks_its_contract_fails_the_run() -> None:
    answerer = FakeModel([{"item_id": 1, "quote": "PostgreSQL"}], name="a")
    grader = FakeModel([{"score": 7}], name="g")  # off the 0-1 scale
    result = Executor({"answerer": answerer, "grader": grader}).run_sync(workflow(GRADE), ITEM)
    assert not result.ok and result.errors[0].step == "quote:grade"
    assert "grader's answer" in result.errors[0].message


def test_grader_calls_count_against_the_run_limit() -> None:
    from turing.executor import RunLimits

    answerer = FakeModel([{"item_id": 1, "quote": "PostgreSQL"}], name="a")
    grader = FakeModel(lambda r: json.dumps({"score": 1}), name="g")
    big = Executor({"answerer": answerer, "grader": grader}, limits=RunLimits(tokens=300))
    result = big.run_sync(workflow(GRADE), ITEM)
    assert not result.ok and result.errors[0].kind == "budget"
    assert result.errors[0].step == "quote:grade" and grader.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_low": "hold"}, "on_low='hold'"),
        ({"accept_at": 4.0}, "outside the scale"),
        ({"scale": "0-10"}, "scale must be"),
        ({"rubric": " "}, "rubric is empty"),
    ],
)
def test_grade_settings_are_checked_when_declared(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"actor": "g", "rubric": "r"} | kwargs
    with pytest.raises(WorkflowDefinitionError, match=message):
        Grade(**settings)  # type: ignore[arg-type]


def test_grading_changes_the_fingerprint_only_when_set() -> None:
    plain = LLMStep("s", prompt="p")
    assert "grade" not in plain.settings()
    assert LLMStep("s", prompt="p", grade=GRADE).settings()["grade"]["accept_at"] == 0.7


def test_request_to_the_grader_asks_for_its_contract() -> None:
    seen: list[ModelRequest] = []

    def grade(request: ModelRequest) -> dict[str, object]:
        seen.append(request)
        return {"score": 0.8}

    answerer = FakeModel([{"item_id": 1, "quote": "PostgreSQL"}], name="a")
    Executor({"answerer": answerer, "grader": FakeModel(grade, name="g")}).run_sync(
        workflow(GRADE), ITEM
    )
    [request] = seen
    assert request.schema is not None and request.schema["required"] == ["score"]
    assert request.temperature == 0.0 and request.from_cache is False
