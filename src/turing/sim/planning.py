"""The simulator's planning responder: answers Turing's planner like a model would.

A planning request is recognised by the planner's system prompt (or a schema titled
`TuringPlan`). The goal, the date and the workflow catalog are read back out of the prompt,
and the answer is the offline planner's plan for them: a good model's answer. With
`bad_plans = N` the first N answers for each goal are invalid plans of kinds a model gets
wrong (a forward reference, a reference to a step that does not exist), so re-asks are
tested end to end. Everything else goes to the wrapped responder.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
from collections import Counter
from typing import Any

from turing.sim.responders import Responder, prompt_text

MARKER = "You are Turing's planner."
_GOAL = re.compile(r"^Goal:[ \t]*(.+)$", re.M)
_TODAY = re.compile(r"^Today \(UTC\):[ \t]*(\d{4}-\d{2}-\d{2})", re.M)
_CATALOG = re.compile(r"^Registered workflows \(JSON, one line\):\n(.+)$", re.M)
BAD_KINDS = ("forward_reference", "dangling_reference")


def is_planning(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> bool:
    if isinstance(schema, dict) and schema.get("title") == "TuringPlan":
        return True
    return MARKER in prompt_text(messages, ("system",))


class PlanningResponder:
    def __init__(self, fallback: Responder, bad_plans: int = 0) -> None:
        self.fallback = fallback
        self.bad_plans = bad_plans
        self.answers: Counter[str] = Counter()  # per goal, so the Nth answer is known
        self._lock = threading.Lock()

    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any:
        if not is_planning(messages, schema):
            return self.fallback.respond(model, messages, schema, rng)
        text = prompt_text(messages)
        goal = _GOAL.search(text)
        catalog = _CATALOG.search(text)
        if goal is None or catalog is None:
            return {"goal": "", "steps": []}  # not the planner's prompt: an empty plan
        today = _TODAY.search(text)
        day = dt.date.fromisoformat(today.group(1)) if today else None
        plan = _plan(goal.group(1).strip(), json.loads(catalog.group(1)), day)
        with self._lock:
            n = self.answers[goal.group(1)]
            self.answers[goal.group(1)] += 1
        if n < self.bad_plans:
            return spoil(plan, BAD_KINDS[n % len(BAD_KINDS)])
        return plan


def _plan(goal: str, catalog: list[dict[str, Any]], today: dt.date | None) -> dict[str, Any]:
    from turing.planning.catalog import Catalog
    from turing.planning.model import CannotPlan
    from turing.planning.offline import OfflinePlanner

    try:
        return OfflinePlanner(Catalog.from_list(catalog)).plan(goal, today).as_dict()
    except CannotPlan:
        return {"goal": goal, "steps": []}  # fails the schema: the planner says it cannot


def spoil(plan: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of a valid plan made invalid the way models get plans wrong."""
    steps = [dict(s) for s in plan.get("steps", [])]
    if kind == "forward_reference" and len(steps) >= 2:
        # the dependant first: it names a step that only comes later
        steps = [steps[-1], *steps[:-1]]
    elif steps:
        first = steps[0]
        first["after"] = [*first.get("after", []), "s99"]
    return {**plan, "steps": steps}
