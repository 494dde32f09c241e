"""A plan is data: steps naming registered workflows, their inputs, fan-out and dependencies.

    {"goal": "...",
     "steps": [
       {"id": "s1", "workflow": "job_skills",
        "for_each": {"filters": {"fetched_since": "2026-11-24"}}},
       {"id": "s2", "workflow": "match_candidates", "after": ["s1"], "inputs": {"k": 5},
        "for_each": {"filters": {"fetched_since": "2026-11-24"}}}]}

An input is a literal value (checked against the workflow's input contract) or a reference
`{"ref": "s1.output.skills"}` to an earlier single-run step's output. A step with `for_each`
runs once per row of its workflow's source, narrowed by the filters the source declares,
through the task queue; without it, the step runs once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from turing.errors import TuringError

REF = re.compile(r"^(?P<step>[a-z][a-z0-9_]{0,31})\.output(?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")
STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PlanError(TuringError):
    """A plan is invalid; nothing ran. `errors` lists every problem, each with where it is."""

    exit_code = 2

    def __init__(self, errors: list[str], *, plan: Mapping[str, Any] | None = None) -> None:
        self.errors = errors
        self.plan = plan
        super().__init__("the plan is invalid:\n" + "\n".join(f"  - {e}" for e in errors))


class CannotPlan(TuringError):
    """A planner cannot turn this goal into a plan; the message says why."""

    exit_code = 2


@dataclass(frozen=True)
class Ref:
    """`s1.output.skills`: a field of an earlier step's output (`path` may be empty)."""

    step: str
    path: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Ref | None:
        found = REF.match(text)
        if not found:
            return None
        path = tuple(p for p in found.group("path").split(".") if p)
        return cls(found.group("step"), path)

    def __str__(self) -> str:
        return ".".join([self.step, "output", *self.path])

    def resolve(self, output: Any) -> Any:
        value = output
        for part in self.path:
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(f"{self}: the output of {self.step} has no {part!r}")
            value = value[part]
        return value


@dataclass(frozen=True)
class ForEach:
    filters: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filters": dict(self.filters)}
        if self.limit is not None:
            out["limit"] = self.limit
        return out


@dataclass(frozen=True)
class PlanStep:
    id: str
    workflow: str
    inputs: Mapping[str, Any] = field(default_factory=dict)  # literal values or Ref
    for_each: ForEach | None = None
    after: tuple[str, ...] = ()

    def refs(self) -> dict[str, Ref]:
        return {k: v for k, v in self.inputs.items() if isinstance(v, Ref)}

    def depends_on(self) -> list[str]:
        """Explicit `after` plus every step a reference points to, in order, no repeats."""
        out = list(dict.fromkeys([*self.after, *(r.step for r in self.refs().values())]))
        return out

    def literals(self) -> dict[str, Any]:
        return {k: v for k, v in self.inputs.items() if not isinstance(v, Ref)}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "workflow": self.workflow}
        out["inputs"] = {
            k: ({"ref": str(v)} if isinstance(v, Ref) else v) for k, v in self.inputs.items()
        }
        if self.for_each is not None:
            out["for_each"] = self.for_each.as_dict()
        out["after"] = list(self.after)
        return out


@dataclass(frozen=True)
class Plan:
    goal: str
    steps: tuple[PlanStep, ...]
    planner: str = "offline"
    notes: tuple[str, ...] = ()  # what the planner understood ("today" = 2026-11-24, ...)

    def step(self, step_id: str) -> PlanStep:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def as_dict(self) -> dict[str, Any]:
        return {"goal": self.goal, "steps": [s.as_dict() for s in self.steps]}
