"""Consistency: on a deterministic sample of tasks, k answers at a higher temperature; the
accepted answer stands only with a majority (whole answers or field by field), every extra
call is recorded as an attempt of `<step>:consistency` and the agreement rate read back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from turing import Consistency, Executor, FakeModel, Grade, LLMStep, ModelRequest, Workflow
from turing.consistency import agreement
from turing.errors import WorkflowDefinitionError


class Role(BaseModel):
    item_id: int
    text: str


class Labelled(BaseModel):
    item_id: int
    level: int
    label: str


ITEM = {"item_id": 1, "text": "senior data engineer"}


def workflow(consistency: Consistency, grade: Grade | None = None) -> Workflow:
    return Workflow(
        "labels",
        input=Role,
        output=Labelled,
        subject_key="item_id",
        steps=[
            LLMStep(
                "label",
                prompt="Label {{ item_id }}: {{ text }}",
                actor="m",
                consistency=consistency,
                grade=grade,
            )
        ],
    )


def answers(*labels: tuple[str, int] | str) -> FakeModel:
    """Answers in order; a plain string is sent as is (e.g. invalid JSON)."""
    scripted: list[Any] = [
        x if isinstance(x, str) else {"item_id": 1, "label": x[0], "level": x[1]} for x in labels
    ]
    return FakeModel(scripted, name="m")


def test_a_majority_accepts_and_the_samples_are_asked_hotter() -> None:
    model = answers(("data", 3), ("data", 3), ("ops", 2))
    result = Executor({"m": model}).run_sync(workflow(Consistency(k=3)), ITEM)
    assert result.ok and result.output == {"item_id": 1, "label": "data", "level": 3}
    assert [r.temperature for r in model.requests] == [0.0, 0.7, 0.7]
    assert [r.from_cache for r in model.requests] == [True, False, False]
    assert [a.step for a in result.attempts] == ["label", "label:consistency", "label:consistency"]
    assert result.attempts[1].ok and [v.rule for v in result.attempts[2].violations] == [
        "consistency"
    ]
    assert agreement(result) == pytest.approx(2 / 3)


def test_without_a_majority_the_run_fails_and_nothing_is_output() -> None:
    model = answers(("data", 3), ("ops", 2), ("web", 1))
    result = Executor({"m": model}).run_sync(workflow(Consistency(k=3)), ITEM)
    assert not result.ok and result.output is None
    [error] = result.errors
    assert error.kind == "output_invalid" and error.violations[0].rule == "consistency"
    assert "agreement 0.33 over 3 answers" in error.message
    assert agreement(result) == pytest.approx(1 / 3)


def test_an_invalid_sample_counts_as_disagreeing() -> None:
    model = answers(("data", 3), "not json at all", ("data", 3))
    result = Executor({"m": model}).run_sync(workflow(Consistency(k=3)), ITEM)
    assert result.ok and agreement(result) == pytest.approx(2 / 3)
    assert result.attempts[1].violations  # the contract's failure, recorded


def test_field_wise_agreement_accepts_when_every_field_has_a_majority() -> None:
    # label agrees 3/3, level 2/3: accepted field by field, where whole answers would fail
    model = answers(("data", 3), ("data", 2), ("data", 3), ("data", 1), ("data", 3))
    fields = Consistency(k=3, agree="fields")
    result = Executor({"m": model}).run_sync(workflow(fields), ITEM)
    assert result.ok
    [differs] = result.attempts[1].violations
    assert differs.path == "$.level" and "level" in differs.message
    whole = Executor({"m": answers(("data", 3), ("data", 2), ("data", 1))})
    assert not whole.run_sync(workflow(Consistency(k=3)), ITEM).ok
    split = Executor({"m": answers(("data", 3), ("data", 2), ("data", 1))})
    assert not split.run_sync(workflow(fields), ITEM).ok  # level: no majority


def test_sampling_is_deterministic_by_subject() -> None:
    c = Consistency(k=2, sample=0.3)
    picked = [s for s in map(str, range(1000)) if c.sampled("wf", s)]
    assert picked == [s for s in map(str, range(1000)) if c.sampled("wf", s)]
    assert 230 < len(picked) < 370
    assert not Consistency(sample=0.0).sampled("wf", "1")
    assert Consistency(sample=1.0).sampled("wf", "1")


def test_an_unsampled_task_makes_no_extra_call() -> None:
    never = Consistency(k=3, sample=0.0)
    result = Executor({"m": answers(("data", 3))}).run_sync(workflow(never), ITEM)
    assert result.ok and len(result.attempts) == 1 and agreement(result) is None


def test_the_graded_answer_is_the_one_checked_for_consistency() -> None:
    def grader(request: ModelRequest) -> dict[str, Any]:
        return {"score": 0.9}

    model = answers(("data", 3), ("data", 3))
    result = Executor({"m": model, "g": FakeModel(grader, name="g")}).run_sync(
        workflow(Consistency(k=2), Grade(actor="g", rubric="a sensible label")), ITEM
    )
    assert result.ok
    assert [a.step for a in result.attempts] == ["label", "label:grade", "label:consistency"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 1}, "at least 2"),
        ({"sample": 1.5}, "within"),
        ({"temperature": 0.0}, "above 0"),
        ({"agree": "vote"}, "majority"),
    ],
)
def test_settings_are_checked_when_declared(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=message):
        Consistency(**kwargs)


def test_extra_calls_reserve_in_the_batch_budget_and_are_settled() -> None:
    from turing.limits.budget import Budget

    model = answers(("data", 3), ("data", 3), ("data", 3))
    budget = Budget(tokens=100_000)
    executor = Executor({"m": model})
    result = asyncio.run(executor.run(workflow(Consistency(k=3)), ITEM, budget=budget))
    assert result.ok and len(result.attempts) == 3
    assert budget.spent_tokens == result.usage.total_tokens > 0
    tight = Budget(tokens=290)  # quotes of 264: two calls of 19 tokens fit, a third does not
    model = answers(("data", 3), ("data", 3), ("data", 3))
    refused = asyncio.run(
        Executor({"m": model}).run(workflow(Consistency(k=3)), ITEM, budget=tight)
    )
    assert not refused.ok and refused.errors[0].kind == "budget_stop"
    assert refused.errors[0].step == "label:consistency" and len(model.requests) == 2


def test_gates_on_a_step_that_is_not_final_fail_the_run_clearly() -> None:
    from turing import ScriptStep

    wf = Workflow(
        "labels",
        input=Role,
        output=Labelled,
        steps=[
            LLMStep("label", prompt="{{ text }}", actor="m", consistency=Consistency()),
            ScriptStep("copy", run=lambda data: data["label"]),
        ],
    )
    result = Executor({"m": answers()}).run_sync(wf, ITEM)
    assert not result.ok and "final step only" in result.errors[0].message
