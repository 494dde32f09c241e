"""Grading: a second model scores the final answer against a rubric before it is accepted.

    LLMStep("extract", actor="extractor", prompt=...,
            grade=Grade(actor="grader", rubric="Every skill is named in the posting.",
                        accept_at=0.7))

The grader sees the rubric, the task's input and the validated (and checked) answer, and
answers its own contract: `{"score": <number on the scale>, "reasons": [...]}`, with the
scale `"0-1"` (default) or `"1-5"`. A score below `accept_at` sends the answer back to the
answering model with the grader's reasons, like a failed check (`on_low="reask"`), or asks
the next actor of the step's cascade (`on_low="escalate"`; on the last actor it re-asks),
or accepts the answer and holds the task for a reviewer with the grade and its reasons as
the reason (`on_low="review"`, see `turing.review`). Only the workflow's final step is graded.

By default a grader never grades answers from its own model: when the grader's actor
identity equals the answering actor's, the run fails before any call (kind `actor`), naming
both; `allow_same_model=True` permits it knowingly.

Every grader call is recorded as an attempt of step `<step>:grade` (prompt, raw answer,
tokens, cost: history's `turing_calls` keeps them); a low grade is also recorded on the
graded answer's call as a violation with rule `grade`. `grades(result)` reads the scores
of a run back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from turing.contracts import Contract
from turing.errors import Violation, WorkflowDefinitionError
from turing.repair import parse_json

if TYPE_CHECKING:
    from turing.result import RunResult

Scale = Literal["0-1", "1-5"]
Role = Literal["system", "user"]
SCALES: dict[str, tuple[float, float]] = {"0-1": (0.0, 1.0), "1-5": (1.0, 5.0)}
GRADE_SUFFIX = ":grade"

GRADER_SYSTEM = (
    "You are a strict grader. You score another model's answer against a rubric. "
    'Reply with only JSON: {{"score": <number from {low:g} to {high:g}>, '
    '"reasons": [<short reasons, one per problem found>]}}.'
)
GRADER_PROMPT = (
    "Rubric:\n{rubric}\n\n"
    "Task input (JSON):\n{input}\n\n"
    "Answer to grade (JSON):\n{answer}\n\n"
    "Score the answer from {low:g} (fails the rubric) to {high:g} (fully satisfies it)."
)
LOW_GRADE = (
    "A reviewer graded your answer {score:g} on a scale of {low:g} to {high:g}; at least "
    "{accept_at:g} is needed. Reasons: {reasons}"
)


@dataclass(frozen=True)
class Grade:
    """A grader actor, its rubric, the score scale and the score an answer needs."""

    actor: str
    rubric: str
    accept_at: float = 0.7
    scale: Scale = "0-1"
    on_low: Literal["reask", "escalate", "review"] = "reask"
    allow_same_model: bool = False
    timeout: float = 60.0
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        where = f"Grade(actor={self.actor!r})"
        if self.scale not in SCALES:
            raise WorkflowDefinitionError(
                where, f"scale must be '0-1' or '1-5', not {self.scale!r}"
            )
        low, high = SCALES[self.scale]
        if not low <= self.accept_at <= high:
            raise WorkflowDefinitionError(
                where, f"accept_at={self.accept_at:g} is outside the scale {self.scale}"
            )
        if self.on_low not in ("reask", "escalate", "review"):
            raise WorkflowDefinitionError(
                where, f"on_low={self.on_low!r} is not one of 'reask', 'escalate', 'review'"
            )
        if not self.rubric.strip():
            raise WorkflowDefinitionError(where, "rubric is empty")

    @property
    def bounds(self) -> tuple[float, float]:
        return SCALES[self.scale]

    def contract(self) -> Contract:
        """What the grader must answer: a score on the scale and its reasons."""
        low, high = self.bounds
        return Contract(
            {
                "title": "Grade",
                "type": "object",
                "properties": {
                    "score": {"type": "number", "minimum": low, "maximum": high},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["score"],
            },
            name="turing.Grade",
        )

    def messages(self, data: Any, answer: Any) -> list[tuple[Role, str]]:
        """(role, content) of the grader's request."""
        low, high = self.bounds
        dump = _dump_json
        return [
            ("system", GRADER_SYSTEM.format(low=low, high=high)),
            (
                "user",
                GRADER_PROMPT.format(
                    rubric=self.rubric, input=dump(data), answer=dump(answer), low=low, high=high
                ),
            ),
        ]

    def verdict(self, value: Any) -> tuple[float, list[str], Violation | None]:
        """The score, the reasons, and the violation a low score is (None: accepted)."""
        score = float(value["score"])
        reasons = value.get("reasons") or []
        reasons = [reasons] if isinstance(reasons, str) else [str(r) for r in reasons]
        if score >= self.accept_at:
            return score, reasons, None
        low, high = self.bounds
        message = LOW_GRADE.format(
            score=score,
            low=low,
            high=high,
            accept_at=self.accept_at,
            reasons="; ".join(reasons) or "(none given)",
        )
        return score, reasons, Violation("$", "grade", message, f"{score:g}")

    def settings(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "rubric": self.rubric,
            "accept_at": self.accept_at,
            "scale": self.scale,
            "on_low": self.on_low,
            "allow_same_model": self.allow_same_model,
        }


def same_model_error(step: str, grader: str, answering: str) -> str:
    return (
        f"step {step!r}: the grader's model {grader!r} is the answering model "
        f"{answering!r}; a model does not grade its own answers (use a grader on another "
        "model, or Grade(allow_same_model=True))"
    )


def grades(result: RunResult) -> list[tuple[str, float]]:
    """(step, score) of every grade in a run, in call order (unparseable ones skipped)."""
    found = []
    for attempt in result.attempts:
        if not attempt.step.endswith(GRADE_SUFFIX) or attempt.error:
            continue
        try:
            score = float(parse_json(attempt.raw, [])["score"])
        except Exception:  # an answer repair could not read: no grade was given
            continue
        found.append((attempt.step.removesuffix(GRADE_SUFFIX), score))
    return found


def _dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
