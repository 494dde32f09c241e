"""Plans for people: a text outline and Mermaid graph text (pastes into any Mermaid viewer)."""

from __future__ import annotations

import json
from typing import Any

from turing.planning.model import Plan, PlanStep


def describe_step(step: PlanStep) -> str:
    """One line: what the step runs on, e.g. `for each row where fetched_since=2026-11-24`."""
    parts = []
    if step.for_each is None:
        parts.append("once")
    else:
        filters = ", ".join(f"{k}={v}" for k, v in step.for_each.filters.items())
        parts.append(f"for each source row where {filters}" if filters else "for each source row")
        if step.for_each.limit is not None:
            parts.append(f"at most {step.for_each.limit}")
    if step.inputs:
        given = ", ".join(f"{k}={_value(v)}" for k, v in step.inputs.items())
        parts.append(f"with {given}")
    return "; ".join(parts)


def _value(value: Any) -> str:
    text = str(value) if not isinstance(value, dict | list) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def outline(plan: Plan) -> str:
    """The plan as an indented tree: each step under the steps it waits for."""
    lines = [f"Plan ({plan.planner}): {plan.goal}"]
    for step in plan.steps:
        deps = step.depends_on()
        after = f"  (after {', '.join(deps)})" if deps else ""
        lines.append(f"  {step.id}  {step.workflow}{after}")
        lines.append(f"      {describe_step(step)}")
    return "\n".join(lines)


def mermaid(plan: Plan) -> str:
    """`graph TD` text: one node per step, an arrow per dependency."""
    lines = ["graph TD"]
    for step in plan.steps:
        label = f"{step.id}: {step.workflow}<br/>{describe_step(step)}".replace('"', "'")
        lines.append(f'    {step.id}["{label}"]')
    for step in plan.steps:
        for dep in step.depends_on():
            lines.append(f"    {dep} --> {step.id}")
    return "\n".join(lines)
