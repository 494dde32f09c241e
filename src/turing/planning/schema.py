"""The JSON Schema of a plan, generated from the catalog, so a model can be constrained by it.

Workflow names are an enum (one branch per workflow), each branch's inputs are that
workflow's input contract (or a reference), its `for_each` filters are the ones its source
declares, and nothing else is allowed anywhere (`additionalProperties: false`): a plan that
satisfies the schema cannot name an unregistered workflow or carry SQL or code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turing.planning.catalog import Catalog, Entry
from turing.planning.model import REF, STEP_ID


@dataclass(frozen=True)
class PlanLimits:
    """How big a plan may be: steps, and tasks one `for_each` step may fan out to."""

    max_steps: int = 20
    max_fan_out: int = 10_000


REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ref"],
    "properties": {
        "ref": {
            "type": "string",
            "pattern": REF.pattern,
            "description": "An earlier step's output field, e.g. s1.output.skills.",
        }
    },
}


def step_schema(entry: Entry, limits: PlanLimits) -> dict[str, Any]:
    inputs = {name: {"anyOf": [dict(sub), REF_SCHEMA]} for name, sub in entry.input_fields.items()}
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": STEP_ID.pattern},
        "workflow": {"type": "string", "enum": [entry.name], "description": entry.description},
        "inputs": {"type": "object", "additionalProperties": False, "properties": inputs},
        "after": {
            "type": "array",
            "items": {"type": "string", "pattern": STEP_ID.pattern},
            "uniqueItems": True,
        },
    }
    if entry.has_source:
        props["for_each"] = {
            "type": "object",
            "additionalProperties": False,
            "required": ["filters"],
            "description": f"Run once per pending row of {entry.name}'s source.",
            "properties": {
                "filters": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {f.name: dict(f.schema) for f in entry.filters.values()},
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": limits.max_fan_out},
            },
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "workflow", "inputs", "after"],
        "properties": props,
    }


def plan_schema(catalog: Catalog, limits: PlanLimits | None = None) -> dict[str, Any]:
    limits = limits or PlanLimits()
    return {
        "title": "TuringPlan",
        "type": "object",
        "additionalProperties": False,
        "required": ["goal", "steps"],
        "properties": {
            "goal": {"type": "string"},
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": limits.max_steps,
                "items": {"anyOf": [step_schema(e, limits) for e in catalog]},
            },
        },
    }
