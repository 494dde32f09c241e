"""Model cascades: `LLMStep(actor=["small", "large"])` asks the first actor, and an answer
that still breaks the contract after repair (or fails a check or grade set to escalate)
goes to the next actor, each call recorded with its actor and cost. Transport failures do
not escalate; the fingerprint, describe() and load-time checks know every actor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from turing import Executor, FakeModel, Grade, LLMStep, ModelResponse, Workflow
from turing.actors.base import ModelRequest, Usage
from turing.checks import Check, custom
from turing.errors import ActorError, WorkflowDefinitionError


class Item(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


ITEM = {"item_id": 1, "text": "A posting about PostgreSQL"}
GOOD = {"item_id": 1, "label": "database"}
BROKEN = '{"item_id": 1}'  # no label: repair cannot fix it


def priced(answer: Any, cost: float) -> ModelResponse:
    """An answer with a price, as a managed actor would report it."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return ModelResponse(text, Usage(10, 5, 1, cost))


def workflow(
    actors: str | list[str] = ("small", "large"),  # type: ignore[assignment]
    *,
    checks: list[Check] | None = None,
    grade: Grade | None = None,
    **step: Any,
) -> Workflow:
    return Workflow(
        "labels",
        input=Item,
        output=Label,
        subject_key="item_id",
        steps=[
            LLMStep(
                "label",
                prompt="Label item {{ item_id }}: {{ text }}",
                actor=actors if isinstance(actors, str) else list(actors),
                grade=grade,
                **step,
            )
        ],
        checks=checks or [],
    )


def test_an_invalid_small_answer_escalates_to_large_and_both_calls_are_recorded() -> None:
    small = FakeModel([priced(BROKEN, 0.001)], name="small")
    large = FakeModel([priced(GOOD, 0.01)], name="large")
    result = Executor({"small": small, "large": large}).run_sync(workflow(), ITEM)
    assert result.ok and result.output == GOOD
    assert [(a.actor, a.number, a.usage.cost) for a in result.attempts] == [
        ("fake:small", 1, 0.001),
        ("fake:large", 2, 0.01),
    ]
    assert result.attempts[0].violations and not result.attempts[1].violations
    # the large model is asked the original prompt afresh, not the small one's conversation
    assert len(large.requests) == 1 and large.requests[0].messages == small.requests[0].messages
    assert result.usage.cost == pytest.approx(0.011)


def test_a_valid_first_answer_never_calls_the_large_model() -> None:
    small = FakeModel([priced(GOOD, 0.001)], name="small")
    large = FakeModel([], name="large")  # any call to it fails the test (nothing scripted)
    result = Executor({"small": small, "large": large}).run_sync(workflow(), ITEM)
    assert result.ok and large.requests == []
    assert [a.actor for a in result.attempts] == ["fake:small"]


def test_a_repairable_answer_does_not_escalate() -> None:
    small = FakeModel(["```json\n" + json.dumps(GOOD) + "\n```"], name="small")
    large = FakeModel([], name="large")
    result = Executor({"small": small, "large": large}).run_sync(workflow(), ITEM)
    assert result.ok and large.requests == [] and result.attempts[0].repairs


def test_the_last_actor_gets_max_reasks_and_then_the_step_fails_naming_the_cascade() -> None:
    small = FakeModel([BROKEN], name="small")
    large = FakeModel([BROKEN, BROKEN], name="large")
    result = Executor({"small": small, "large": large}).run_sync(workflow(max_reasks=1), ITEM)
    assert not result.ok
    assert [a.actor for a in result.attempts] == ["fake:small", "fake:large", "fake:large"]
    assert "after asking small -> large (3 calls)" in result.errors[0].message
    # the large model's re-ask carries its own previous answer and the errors
    assert [m.role for m in large.requests[1].messages] == ["user", "assistant", "user"]


def test_escalate_after_gives_an_earlier_actor_its_re_asks_first() -> None:
    small = FakeModel([BROKEN, BROKEN], name="small")
    large = FakeModel([GOOD], name="large")
    result = Executor({"small": small, "large": large}).run_sync(workflow(escalate_after=1), ITEM)
    assert result.ok
    assert [a.actor for a in result.attempts] == ["fake:small", "fake:small", "fake:large"]


def test_three_levels_escalate_in_order() -> None:
    models = {n: FakeModel([BROKEN] if n != "c" else [GOOD], name=n) for n in "abc"}
    result = Executor(models).run_sync(workflow(["a", "b", "c"]), ITEM)
    assert result.ok and [a.actor for a in result.attempts] == ["fake:a", "fake:b", "fake:c"]


def _never_misc(out: Any, inp: Any) -> list[str]:
    return ["misc is not a label"] if out["label"] == "misc" else []


MISC = {"item_id": 1, "label": "misc"}


def test_a_check_set_to_escalate_asks_the_next_actor() -> None:
    small = FakeModel([MISC], name="small")
    large = FakeModel([GOOD], name="large")
    checks = [custom("no_misc", _never_misc, on_fail="escalate")]
    result = Executor({"small": small, "large": large}).run_sync(workflow(checks=checks), ITEM)
    assert result.ok and [a.actor for a in result.attempts] == ["fake:small", "fake:large"]
    assert result.attempts[0].violations[0].rule == "check:no_misc"


def test_a_check_set_to_reask_re_asks_the_same_actor_before_escalating() -> None:
    small = FakeModel([MISC, GOOD], name="small")
    large = FakeModel([], name="large")
    checks = [custom("no_misc", _never_misc, on_fail="reask")]
    result = Executor({"small": small, "large": large}).run_sync(workflow(checks=checks), ITEM)
    assert result.ok and [a.actor for a in result.attempts] == ["fake:small", "fake:small"]


def test_escalate_without_a_cascade_re_asks() -> None:
    only = FakeModel([MISC, GOOD], name="only")
    checks = [custom("no_misc", _never_misc, on_fail="escalate")]
    result = Executor({"only": only}).run_sync(workflow("only", checks=checks), ITEM)
    assert result.ok and len(only.requests) == 2


def test_a_low_grade_set_to_escalate_asks_the_next_actor() -> None:
    small = FakeModel([MISC], name="small")
    large = FakeModel([GOOD], name="large")
    grader = FakeModel(
        lambda r: {"score": 0.1 if '"misc"' in r.messages[-1].content else 0.9}, name="g"
    )
    grade = Grade(actor="grader", rubric="a real label", on_low="escalate")
    result = Executor({"small": small, "large": large, "grader": grader}).run_sync(
        workflow(grade=grade), ITEM
    )
    assert result.ok and result.output == GOOD
    assert [a.actor for a in result.attempts] == [
        "fake:small", "fake:g", "fake:large", "fake:g",
    ]  # fmt: skip


def test_a_grader_on_any_actor_of_the_cascade_is_refused() -> None:
    small, large = FakeModel([], name="small"), FakeModel([], name="large")
    grade = Grade(actor="large", rubric="r")
    result = Executor({"small": small, "large": large}).run_sync(workflow(grade=grade), ITEM)
    assert not result.ok and result.errors[0].kind == "actor" and small.requests == []


def test_a_transport_failure_does_not_escalate() -> None:
    small = FakeModel([ActorError("HTTP 503", transient=True, kind="server")], name="small")
    large = FakeModel([], name="large")
    result = Executor({"small": small, "large": large}).run_sync(workflow(), ITEM)
    assert not result.ok and result.errors[0].transient and large.requests == []


def test_an_unresolvable_later_actor_fails_before_any_call() -> None:
    small = FakeModel([GOOD], name="small")
    result = Executor({"small": small}).run_sync(workflow(), ITEM)
    assert not result.ok and "'large'" in result.errors[0].message and small.requests == []


def test_the_fingerprint_includes_every_actor_of_the_cascade() -> None:
    wf = workflow()
    small = FakeModel([], name="small")
    one = Executor({"small": small, "large": FakeModel([], name="large")}).fingerprint(wf)
    other = Executor({"small": small, "large": FakeModel([], name="huge")}).fingerprint(wf)
    assert one != other
    assert workflow(["small", "large"]).fingerprint() != workflow(["large", "small"]).fingerprint()


def test_a_single_actor_fingerprint_is_unchanged_by_the_cascade_support() -> None:
    # a single reference is fingerprinted as before (a string, no escalate_after)
    step = workflow("small").steps[0].step
    assert isinstance(step, LLMStep)
    settings = step.settings()
    assert settings["actor"] == "small" and "escalate_after" not in settings
    assert workflow(["small"]).fingerprint() == workflow("small").fingerprint()


def test_describe_shows_the_cascade() -> None:
    [step] = workflow().describe()["steps"]
    assert step["actor"] == "small" and step["cascade"] == ["small", "large"]
    [single] = workflow("small").describe()["steps"]
    assert "cascade" not in single


@pytest.mark.parametrize(
    ("actors", "extra", "message"),
    [
        ([], {}, "non-empty list"),
        (["small", ""], {}, "non-empty list"),
        (["small", "small"], {}, "names an actor twice"),
        (["small", "large"], {"escalate_after": -1}, "escalate_after must be >= 0"),
    ],
)
def test_bad_cascades_are_refused_at_load_time(
    actors: list[str], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(WorkflowDefinitionError, match=message):
        workflow(actors, **extra)


def test_the_first_ask_of_each_level_may_come_from_the_cache() -> None:
    small = FakeModel([BROKEN], name="small")
    large = FakeModel([GOOD], name="large")
    Executor({"small": small, "large": large}).run_sync(workflow(), ITEM)
    requests: list[ModelRequest] = small.requests + large.requests
    assert [r.from_cache for r in requests] == [True, True]
