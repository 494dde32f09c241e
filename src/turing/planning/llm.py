"""The LLM planner: any configured actor writes the plan, constrained by the plan schema.

The request is an ordinary one-step workflow run through the executor, so the answer is
validated against the plan schema, repaired and re-asked like any structured output. What
the schema cannot say (references resolve, no cycles, types fit) is checked next; a plan
that fails those checks goes back to the model with the errors, at most `max_reasks` times.
When it gives up, the error it raises lists the last errors (each violation with its path).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from turing.actors.base import Usage
from turing.executor import Executor
from turing.planning.catalog import Catalog
from turing.planning.goal import today_utc
from turing.planning.model import CannotPlan, Plan, PlanError
from turing.planning.schema import PlanLimits, plan_schema
from turing.planning.validate import parse_plan
from turing.result import RunError
from turing.steps import LLMStep
from turing.workflow import Workflow

MARKER = "You are Turing's planner."
SYSTEM = (
    f"{MARKER} You turn a goal into a plan: a small DAG of runs of registered workflows. "
    "Answer with one JSON object that satisfies the given JSON Schema and nothing else."
)
PROMPT = """Goal: {{ goal }}
Today (UTC): {{ today }}
Registered workflows (JSON, one line):
{{ catalog }}

Rules:
- Each step has an id (s1, s2, ...), a workflow from the list, inputs, after (ids it waits for).
- A workflow with "for_each": true can fan out over its source: give "for_each" with the
  filters its source declares (dates as YYYY-MM-DD). Without for_each a step runs once and
  needs every required input, as a value or as {"ref": "s1.output.field"}.
- Order steps so that a step only refers to steps listed before it; no cycles.
- A step whose input comes from another step's output (directly or through the database)
  lists that step in "after".
- Never put SQL or code anywhere in the plan.
{% if feedback %}
Your previous plan was rejected:
{{ feedback }}
Answer with the whole corrected plan.
{% endif %}"""

_INPUT = {
    "type": "object",
    "required": ["goal", "today", "catalog", "feedback"],
    "properties": {
        "goal": {"type": "string", "minLength": 1},
        "today": {"type": "string", "format": "date"},
        "catalog": {"type": "string"},
        "feedback": {"type": "string"},
    },
}


@dataclass
class PlanAttempt:
    """One answer of the model: the plan it gave and why it was rejected (if it was)."""

    answer: Any
    errors: list[str] = field(default_factory=list)


class LLMPlanner:
    def __init__(
        self,
        executor: Executor,
        actor: str,
        catalog: Catalog,
        limits: PlanLimits | None = None,
        *,
        max_reasks: int = 2,
    ) -> None:
        self.executor = executor
        self.actor = actor
        self.catalog = catalog
        self.limits = limits or PlanLimits()
        self.max_reasks = max_reasks
        self.name = f"llm:{actor}"
        self.attempts: list[PlanAttempt] = []
        self.usage = Usage()
        self.workflow = Workflow(
            "turing_planner",
            input=_INPUT,
            output=plan_schema(catalog, self.limits),
            steps=[LLMStep("plan", actor=actor, system=SYSTEM, prompt=PROMPT)],
            description="Turn a goal into a plan of registered workflows.",
        )

    def plan(self, goal: str, today: dt.date | None = None) -> Plan:
        return asyncio.run(self.aplan(goal, today))

    async def aplan(self, goal: str, today: dt.date | None = None) -> Plan:
        today = today or today_utc()
        catalog = json.dumps(self.catalog.as_list(), separators=(",", ":"))
        feedback = ""
        self.attempts = []
        for _ in range(1 + self.max_reasks):
            data = {"goal": goal, "today": today.isoformat(), "catalog": catalog}
            result = await self.executor.run(self.workflow, data | {"feedback": feedback})
            self.usage = self.usage + result.usage
            if not result.ok:
                raise CannotPlan(
                    f"the model {self.actor!r} gave no usable plan; its last errors:\n"
                    + "\n".join(f"  - {e}" for e in _last_errors(result.errors))
                )
            attempt = PlanAttempt(result.output)
            self.attempts.append(attempt)
            try:
                notes = (f"re-asked {len(self.attempts) - 1} time(s)",) if feedback else ()
                return parse_plan(
                    result.output, self.catalog, self.limits, planner=self.name, notes=notes
                )
            except PlanError as exc:
                attempt.errors = exc.errors
                feedback = "\n".join(f"- {e}" for e in exc.errors)
                feedback += "\nThe rejected plan was: " + json.dumps(result.output)
        last = self.attempts[-1].errors if self.attempts else []
        raise PlanError(
            [
                f"the model's plan was still invalid after {self.max_reasks} re-ask(s); "
                f"its last errors follow",
                *last,
            ]
        )


_MAX_SHOWN = 10


def _last_errors(errors: list[RunError]) -> list[str]:
    """Each error of a failed planning run with its violations (path and message), so the
    reason a model's answer was refused is shown, not only that it was."""
    if not errors:
        return ["no answer"]
    out = []
    for e in errors:
        out.append(f"{e.kind}: {e.message}")
        out += [f"{v.path}: {v.message}" for v in e.violations[:_MAX_SHOWN]]
        if len(e.violations) > _MAX_SHOWN:
            out.append(f"... and {len(e.violations) - _MAX_SHOWN} more")
    return out
