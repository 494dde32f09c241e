"""Consistency: ask again at a higher temperature and accept an answer only if it agrees.

    LLMStep("extract", actor="extractor", prompt=...,
            consistency=Consistency(k=3, sample=0.1, temperature=0.7, agree="majority"))

For a sampled fraction `sample` of tasks (chosen by a hash of the workflow and the task's
subject, so a re-run samples the same tasks), and with `after_check_failure=True` also for
every task whose answers failed a check before one passed, the final step's accepted answer
(validated, checked and graded) is one of `k` answers: `k - 1` more are asked at
`temperature`, each repaired and validated against the contract and the workflow's checks
(an invalid one counts as disagreeing). Agreement is then:

- `"majority"`: the share of the `k` answers equal to the accepted one (whole objects or
  scalars, compared as canonical JSON); the answer is accepted when it is above one half.
- `"fields"`: for each top-level field of the accepted answer, the share of answers that
  give the same value; the answer is accepted when every field is above one half, and the
  agreement rate is the mean over the fields.

An answer without agreement fails the run (kind `output_invalid`, a violation with rule
`consistency` naming the rate), so a value the model does not give reliably never reaches
the sink. Every extra call is an attempt of step `<step>:consistency`; a sample that
disagrees carries a violation with rule `consistency` naming the fields that differ, and
`agreement(result)` reads the rate of a run back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from turing.errors import Violation, WorkflowDefinitionError

if TYPE_CHECKING:
    from turing.result import RunResult

Agree = Literal["majority", "fields"]
CONSISTENCY_SUFFIX = ":consistency"
_MISSING = object()


@dataclass(frozen=True)
class Consistency:
    """Ask `k` times (the accepted answer and k-1 more at `temperature`) on a `sample` of tasks."""

    k: int = 3
    sample: float = 1.0
    temperature: float = 0.7
    agree: Agree = "majority"
    # also every task whose answers failed a check before one passed (sampled or not): a
    # model that needed a correction is asked whether it gives the corrected value reliably
    after_check_failure: bool = False

    def __post_init__(self) -> None:
        where = f"Consistency(k={self.k})"
        if self.k < 2:
            raise WorkflowDefinitionError(where, "k must be at least 2 (one answer agrees)")
        if not 0.0 <= self.sample <= 1.0:
            raise WorkflowDefinitionError(where, f"sample={self.sample:g} is not within [0, 1]")
        if self.temperature <= 0:
            raise WorkflowDefinitionError(
                where, "temperature must be above 0: at 0 the answers only repeat"
            )
        if self.agree not in ("majority", "fields"):
            raise WorkflowDefinitionError(
                where, f"agree must be 'majority' or 'fields', not {self.agree!r}"
            )

    def sampled(self, workflow: str, subject: str) -> bool:
        """Whether this task is checked: a stable hash of workflow and subject, so every
        run (and every worker) picks the same tasks."""
        if self.sample >= 1.0:
            return True
        if self.sample <= 0.0:
            return False
        digest = hashlib.sha256(f"{workflow}\x00{subject}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample

    def judge(self, accepted: Any, samples: Sequence[Any]) -> tuple[float, bool, list[list[str]]]:
        """(agreement rate, accepted?, per sample the fields (or `$`) that differ) for the
        accepted answer and the other answers (`_MISSING` for an invalid one)."""
        k = 1 + len(samples)
        if self.agree == "fields" and isinstance(accepted, Mapping):
            fields = sorted(accepted)
            differ = [[f for f in fields if not _same_field(s, f, accepted[f])] for s in samples]
            if not fields:
                return 1.0, True, differ
            shares = [(k - sum(f in d for d in differ)) / k for f in fields]
            return sum(shares) / len(shares), all(s > 0.5 for s in shares), differ
        differ = [[] if _canonical(s) == _canonical(accepted) else ["$"] for s in samples]
        rate = (k - sum(1 for d in differ if d)) / k
        return rate, rate > 0.5, differ

    def settings(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "sample": self.sample,
            "temperature": self.temperature,
            "agree": self.agree,
            **({"after_check_failure": True} if self.after_check_failure else {}),
        }


def subject_of(data: Mapping[str, Any], subject_key: str | None) -> str:
    """The task's subject for sampling: its key's value, else the whole input."""
    if subject_key is not None and data.get(subject_key) is not None:
        return str(data[subject_key])
    return _canonical(dict(data))


def disagreement(fields: list[str], rate: float, k: int) -> Violation:
    where = "the answer" if fields == ["$"] else ", ".join(fields)
    return Violation(
        "$" if fields == ["$"] else f"$.{fields[0]}",
        "consistency",
        f"differs from the accepted answer in {where} (agreement {rate:.2f} over {k} answers)",
        "",
    )


def agreement(result: RunResult) -> float | None:
    """The share of a run's consistency answers that agreed with the accepted one
    (the accepted answer counted), or None when the run was not sampled."""
    samples = [a for a in result.attempts if a.step.endswith(CONSISTENCY_SUFFIX)]
    if not samples:
        return None
    agreed = sum(1 for a in samples if a.error is None and not a.violations)
    return (1 + agreed) / (1 + len(samples))


def _same_field(sample: Any, name: str, value: Any) -> bool:
    if not isinstance(sample, Mapping):
        return False
    return _canonical(sample.get(name, _MISSING)) == _canonical(value)


def _canonical(value: Any) -> str:
    if value is _MISSING:
        return "\x00missing"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
