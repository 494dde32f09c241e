"""Planning: a natural-language goal becomes a validated DAG of workflow runs.

    plan = orchestrator.plan("Extract skills from all jobs fetched today, then match top 5")
    report = orchestrator.execute_plan(plan)          # or plan_and_execute(goal)

A `Plan` is data (`Plan.as_dict()`, `parse_plan(json)`), checked before anything runs.
`OfflinePlanner` needs no model; `LLMPlanner` asks any configured actor, constrained by
`plan_schema(catalog)`, and re-asks with the errors when its plan does not validate.
"""

from turing.planning.catalog import Catalog
from turing.planning.execute import PlanReport, PlanRunner, StepReport
from turing.planning.llm import LLMPlanner
from turing.planning.model import CannotPlan, ForEach, Plan, PlanError, PlanStep, Ref
from turing.planning.offline import OfflinePlanner
from turing.planning.render import mermaid, outline
from turing.planning.schema import PlanLimits, plan_schema
from turing.planning.validate import parse_plan, validate

__all__ = [
    "CannotPlan",
    "Catalog",
    "ForEach",
    "LLMPlanner",
    "OfflinePlanner",
    "Plan",
    "PlanError",
    "PlanLimits",
    "PlanReport",
    "PlanRunner",
    "PlanStep",
    "Ref",
    "StepReport",
    "mermaid",
    "outline",
    "parse_plan",
    "plan_schema",
    "validate",
]
