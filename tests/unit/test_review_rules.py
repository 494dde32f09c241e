"""Review rules: when a validated output waits for a person, and why (the reason text is
what a reviewer reads), checked at load time like checks are."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from turing import ScriptStep, Workflow
from turing.checks import custom
from turing.errors import WorkflowDefinitionError
from turing.review import below, drawn, feedback, feedback_messages, flagged, sample, when


class In(BaseModel):
    item_id: int


class Out(BaseModel):
    item_id: int
    confidence: float
    needs_human: bool = False
    skills: list[dict[str, float]] = []


def workflow(**kw: object) -> Workflow:
    return Workflow(
        "w",
        input=In,
        output=Out,
        steps=[ScriptStep("s", run=lambda d: {"item_id": d["item_id"], "confidence": 1.0})],
        **kw,  # type: ignore[arg-type]
    )


def test_below_names_each_low_value_and_ignores_non_numbers() -> None:
    rule = below("skills[].weight", 0.5)
    out = {"skills": [{"weight": 0.9}, {"weight": 0.2}, {"weight": "high"}, {"weight": True}]}
    assert rule.reason(out, {}, "s") == "$.skills[1].weight = 0.2 < 0.5"
    assert rule.reason({"skills": [{"weight": 0.5}]}, {}, "s") is None


def test_flagged_holds_on_a_truthy_field_only() -> None:
    rule = flagged("needs_human")
    assert rule.reason({"needs_human": True}, {}, "s") == "$.needs_human is set"
    assert rule.reason({"needs_human": False}, {}, "s") is None
    assert rule.reason({}, {}, "s") is None
    assert rule.reason(["not", "a", "mapping"], {}, "s") is None


def test_sample_is_stable_per_subject_and_near_its_fraction() -> None:
    rule = sample(0.1)
    subjects = [str(i) for i in range(5000)]
    chosen = [s for s in subjects if rule.reason({}, {}, s) is not None]
    assert 400 < len(chosen) < 600  # 10% of 5000, by a hash
    assert chosen == [s for s in subjects if rule.reason({}, {}, s) is not None]
    assert not any(drawn(s, 0.0, "audit") for s in subjects)
    assert all(drawn(s, 1.0, "audit") for s in subjects)
    assert [s for s in subjects if drawn(s, 0.1, "other")] != chosen  # the salt matters
    with pytest.raises(ValueError, match="within"):
        sample(1.5)


def test_when_takes_a_reason_true_or_nothing() -> None:
    senior = when("senior", lambda out, inp: out["level"] == "principal", description="principal")
    explained = when("why", lambda out, inp: f"level {out['level']}" if out["level"] else None)
    assert senior.reason({"level": "principal"}, {}, "s") == "principal"
    assert senior.reason({"level": "junior"}, {}, "s") is None
    assert explained.reason({"level": "mid"}, {}, "s") == "level mid"
    assert explained.reason({"level": ""}, {}, "s") is None


def test_the_workflow_joins_rule_and_review_check_reasons() -> None:
    wf = workflow(
        review=[below("confidence", 0.5), flagged("needs_human")],
        checks=[
            custom("odd", lambda o, i: ["odd id"] if o["item_id"] % 2 else [], on_fail="review")
        ],
    )
    out = {"item_id": 3, "confidence": 0.1, "needs_human": True}
    reason = wf.hold_reason(out, {"item_id": 3}, "3")
    assert reason == (
        "below:confidence: $.confidence = 0.1 < 0.5; flagged:needs_human: $.needs_human is set; "
        "check odd: odd id"
    )
    assert wf.hold_reason({"item_id": 2, "confidence": 0.9}, {"item_id": 2}, "2") is None
    assert wf.describe()["review"][0] == {
        "name": "below:confidence",
        "description": "confidence < 0.5",
    }


def test_review_rules_do_not_change_the_fingerprint() -> None:
    assert workflow().fingerprint() == workflow(review=below("confidence", 0.5)).fingerprint()


def test_bad_rules_are_refused_at_load() -> None:
    with pytest.raises(WorkflowDefinitionError, match="two review rules are named 'x'"):
        workflow(review=[when("x", lambda o, i: True), when("x", lambda o, i: True)])
    with pytest.raises(WorkflowDefinitionError, match="is not a review rule"):
        workflow(review=["needs_human"])
    with pytest.raises(WorkflowDefinitionError, match="must be letters"):
        workflow(review=[when("has space", lambda o, i: True)])


def test_feedback_carries_the_held_answer_and_the_comment() -> None:
    note = feedback({"item_id": 1, "confidence": 0.2}, "too vague", "bob")
    assistant, user = feedback_messages(note)
    assert assistant.role == "assistant" and json.loads(assistant.content)["confidence"] == 0.2
    assert user.role == "user" and "too vague" in user.content
