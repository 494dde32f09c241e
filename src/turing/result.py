"""What one workflow run produced: status, output, errors, attempts, timings, usage, repairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from turing.actors.base import Usage
from turing.errors import Violation
from turing.repair import Repair

Status = Literal["succeeded", "failed"]


class ErrorKind(StrEnum):
    """Why a run failed; the CLI and history group failures by these. `STORE` is Turing's
    own database failing (never the task's fault: the task is deferred, not failed);
    `ACTOR` is the model or its provider."""

    INPUT_INVALID = "input_invalid"
    TEMPLATE = "template"
    ACTOR = "actor"
    OUTPUT_INVALID = "output_invalid"
    SCRIPT_CRASH = "script_crash"
    SCRIPT_TIMEOUT = "script_timeout"
    SCRIPT_BAD_OUTPUT = "script_bad_output"
    BUDGET = "budget"
    BUDGET_STOP = "budget_stop"  # the batch's budget had no room for a call: not started
    CIRCUIT_OPEN = "circuit_open"  # the model host's circuit is open: not called, deferred
    BUDGET_WAIT = "budget_wait"  # a period budget had no room for a call: deferred to later
    STORE = "store"


ERROR_KINDS = tuple(k.value for k in ErrorKind)


@dataclass(frozen=True)
class RunError:
    kind: str
    message: str
    step: str | None = None
    violations: tuple[Violation, ...] = ()
    transient: bool = False
    retry_after: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "step": self.step,
            "violations": [v.__dict__ for v in self.violations],
        }


@dataclass(frozen=True)
class Attempt:
    """One call to an actor (first ask or re-ask), with what came back and what was done."""

    step: str
    number: int
    actor: str
    messages: tuple[dict[str, str], ...]
    raw: str
    usage: Usage
    latency_s: float
    repairs: tuple[Repair, ...] = ()
    violations: tuple[Violation, ...] = ()
    error: str | None = None
    batch: int | None = None  # answered through this provider batch (turing_batches.id)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "number": self.number,
            "actor": self.actor,
            "messages": list(self.messages),
            "raw": self.raw,
            "usage": self.usage.as_dict(),
            "latency_s": round(self.latency_s, 6),
            "repairs": [r.as_dict() for r in self.repairs],
            "violations": [v.__dict__ for v in self.violations],
            "error": self.error,
        }


@dataclass
class StepResult:
    name: str
    kind: str
    status: Status = "succeeded"
    duration_s: float = 0.0
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    repairs: list[Repair] = field(default_factory=list)
    output: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "duration_s": round(self.duration_s, 6),
            "attempts": self.attempts,
            "usage": self.usage.as_dict(),
            "repairs": [r.as_dict() for r in self.repairs],
        }


@dataclass
class RunResult:
    workflow: str
    version: int
    fingerprint: str
    status: Status = "succeeded"
    output: Any = None
    errors: list[RunError] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    duration_s: float = 0.0
    dry_run: bool = False
    # why the accepted output should wait for a reviewer (a low grade set to "review")
    holds: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def repairs(self) -> list[tuple[str, Repair]]:
        return [(s.name, r) for s in self.steps for r in s.repairs]

    @property
    def reasks(self) -> int:
        """Answers asked again (grader and consistency calls are gates, not re-asks)."""
        return sum(1 for a in self.attempts if a.number > 1 and ":" not in a.step)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "dry_run": self.dry_run,
            "output": self.output,
            "errors": [e.as_dict() for e in self.errors],
            "steps": [s.as_dict() for s in self.steps],
            "attempts": len(self.attempts),
            "reasks": self.reasks,
            "usage": self.usage.as_dict(),
            "repairs": [{"step": s, **r.as_dict()} for s, r in self.repairs],
            "duration_s": round(self.duration_s, 6),
        }
