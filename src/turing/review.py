"""The review gate: hold a validated output for a person before its sink runs.

A contract and checks prove what a program can prove; some answers still need a person
(the model says it is unsure, a low confidence, an audit sample). A workflow names when:

    Workflow(..., review=[
        flagged("needs_human"),                 # a truthy field of the output
        below("confidence", 0.7),               # a number under a threshold
        sample(0.02),                           # 2% of subjects, the same ones every time
        when("senior_role", lambda out, inp: out["seniority"] == "principal"),
    ])

A task whose validated output meets any rule is held: its output is stored, its sink does
not run, and it counts as `review` everywhere until a reviewer approves it (the sink runs,
in the transaction that marks the task done), edits it (validated against the contract
first) or rejects it (failed with the reason, or asked again with the reviewer's comment).
A check with `on_fail="review"` holds the task the same way, its failure as the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from turing._json import canonical
from turing.actors.base import Message
from turing.checks import validate_named, values_at

# (output, input) -> a reason to hold (str), True (hold, the rule's description is the
# reason), or False/None (do not hold)
Condition = Callable[[Mapping[str, Any], Mapping[str, Any]], "str | bool | None"]


@dataclass(frozen=True)
class ReviewRule:
    """One condition under which a validated output waits for a person."""

    name: str
    test: Callable[[Mapping[str, Any], Mapping[str, Any], str], str | None] = field(compare=False)
    description: str = ""

    def reason(self, output: Any, data: Mapping[str, Any], subject: str) -> str | None:
        """Why this output is held (None: it is not)."""
        if not isinstance(output, Mapping):
            return None
        return self.test(output, data, subject)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


def flagged(path: str, *, name: str | None = None) -> ReviewRule:
    """Hold when a value at `path` is truthy (e.g. the model's own `needs_human`)."""

    def test(output: Mapping[str, Any], data: Mapping[str, Any], subject: str) -> str | None:
        hits = [where for where, value in values_at(output, path) if value]
        return f"{', '.join(hits)} is set" if hits else None

    return ReviewRule(name or f"flagged:{path}", test, f"{path} is truthy")


def below(path: str, threshold: float, *, name: str | None = None) -> ReviewRule:
    """Hold when a number at `path` is under `threshold` (a confidence, a score)."""

    def test(output: Mapping[str, Any], data: Mapping[str, Any], subject: str) -> str | None:
        low = [
            f"{where} = {value:g} < {threshold:g}"
            for where, value in values_at(output, path)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < threshold
        ]
        return "; ".join(low) if low else None

    return ReviewRule(name or f"below:{path}", test, f"{path} < {threshold:g}")


def sample(fraction: float, *, salt: str = "audit", name: str | None = None) -> ReviewRule:
    """Hold a `fraction` of subjects for an audit. Chosen by a hash of the subject, so the
    same subjects are sampled on every run and every worker (a retry is not re-drawn)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"sample fraction must be within [0, 1], got {fraction}")

    def test(output: Mapping[str, Any], data: Mapping[str, Any], subject: str) -> str | None:
        return f"audit sample ({fraction:.0%})" if drawn(subject, fraction, salt) else None

    return ReviewRule(name or "sample", test, f"{fraction:g} of subjects, by hash")


def when(name: str, condition: Condition, *, description: str = "") -> ReviewRule:
    """Any condition: `condition(output, input)` returns a reason, True, or False/None."""

    def test(output: Mapping[str, Any], data: Mapping[str, Any], subject: str) -> str | None:
        verdict = condition(output, data)
        if verdict is True:
            return description or name
        return verdict or None

    return ReviewRule(name, test, description)


def drawn(subject: str, fraction: float, salt: str) -> bool:
    """True for a stable `fraction` of subjects."""
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def validate_rules(rules: Sequence[ReviewRule]) -> list[str]:
    """Problems with a workflow's review rules, for load time."""
    return validate_named(
        rules, ReviewRule, "review rule", "a review rule (use turing.review: flagged, ...)"
    )


def hold_reason(
    rules: Sequence[ReviewRule], output: Any, data: Mapping[str, Any], subject: str
) -> str | None:
    """The reasons every matching rule gives, joined (None: the output goes to its sink)."""
    reasons = [
        f"{rule.name}: {why}"
        for rule in rules
        if (why := rule.reason(output, data, subject)) is not None
    ]
    return "; ".join(reasons) if reasons else None


def feedback(answer: Any, comment: str, reviewer: str) -> str:
    """What a re-ask after review carries to the next run (stored on the task)."""
    return canonical({"answer": answer, "comment": comment, "reviewer": reviewer})


def feedback_messages(text: str) -> list[Message]:
    """The held answer and the reviewer's comment, after the original prompt: the model
    answers again knowing what a person found wrong."""
    data = json.loads(text)
    return [
        Message("assistant", canonical(data.get("answer"))),
        Message(
            "user",
            "A reviewer sent this answer back: "
            f"{data.get('comment') or 'no comment given'}\n"
            "Answer the original request again, following its instructions and format.",
        ),
    ]
