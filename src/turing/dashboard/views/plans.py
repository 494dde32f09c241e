"""Plans drawn as graphs, each step a box in dependency order with a progress bar:

- plan runs recorded in the database (`turing plan --execute`, `plan_and_execute`): each
  step's status and its own tasks' statuses now, so a run in progress fills up;
- the plan JSON files of the project's `plans/` folder (what `turing plan --json` prints and
  `turing plan --file` runs), not run yet: each step shows its workflow's tasks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard
from turing.dashboard._svg import Node, plan_graph
from turing.errors import TuringError
from turing.planning.catalog import Catalog
from turing.planning.render import describe_step
from turing.planning.validate import parse_plan
from turing.store.plans import PlanStore

MAX_PLANS = 200
RECENT_RUNS = 50


def routes(ctx: Dashboard) -> list[BaseRoute]:
    recorded = PlanStore(ctx.store.db)

    async def listing(request: Request) -> Response:
        files = _files(ctx.plans_dir)
        runs = await asyncio.to_thread(recorded.runs, RECENT_RUNS)
        return ctx.render(
            request, "plans.html", title="Plans", files=files, folder=ctx.plans_dir, runs=runs
        )

    async def run(request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        values = await asyncio.to_thread(run_view, recorded, run_id)
        if values is None:
            raise HTTPException(404, f"no plan run {run_id}")
        return ctx.render(request, "plan_run.html", title=f"Plan run {run_id}", **values)

    async def one(request: Request) -> Response:
        name = str(request.path_params["name"])
        path = _files(ctx.plans_dir).get(name)
        if path is None:
            raise HTTPException(404, f"no plan named {name!r} in the plans folder")
        values = plan_view(ctx, path)
        return ctx.render(request, "plan.html", title=f"Plan {name}", name=name, **values)

    return [
        Route("/plans", listing),
        Route("/plans/runs/{run_id:int}", run),
        Route("/plans/{name}", one),
    ]


def run_view(recorded: PlanStore, run_id: int) -> dict[str, Any] | None:
    """A recorded run: its graph, each step's box filled by its own tasks' statuses now."""
    found = recorded.run(run_id)
    if found is None:
        return None
    row, saved = found
    plan = json.loads(row["plan"])
    by_step = {s.step: s for s in saved}
    steps = []
    for s in plan.get("steps", []):
        mine = by_step.get(s["id"])
        counts = recorded.task_counts(mine.task_ids) if mine else {}
        steps.append(
            {
                "id": s["id"],
                "workflow": s["workflow"],
                "after": _depends_on(s),
                "status": mine.status if mine else "waiting",
                "tasks": mine.tasks if mine else 0,
                "reason": mine.reason if mine else None,
                "counts": counts,
            }
        )
    nodes = [Node(s["id"], s["workflow"], tuple(s["after"]), s["counts"]) for s in steps]
    return {"run": row, "steps": steps, "svg": plan_graph(nodes)}


def _files(folder: Path | None) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.json"))[:MAX_PLANS]}


def plan_view(ctx: Dashboard, path: Path) -> dict[str, Any]:
    """The plan's graph and step table, or the problems that keep it from being drawn."""
    try:
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict) and "steps" not in data and "plan" in data:
            data = data["plan"]  # what `turing plan --json` prints: the plan with notes
        if ctx.orchestrator is None:
            raise TuringError("plans are checked against the registry: start with a project")
        plan = parse_plan(data, Catalog.from_registry(ctx.orchestrator.registry))
    except (OSError, ValueError, TuringError) as exc:
        return {"error": str(exc), "svg": "", "steps": [], "goal": ""}
    queue = ctx.browse.queue()
    nodes = [
        Node(s.id, s.workflow, tuple(s.depends_on()), queue.get(s.workflow, {})) for s in plan.steps
    ]
    steps = [
        {"id": s.id, "workflow": s.workflow, "what": describe_step(s), "after": s.depends_on()}
        | {"counts": queue.get(s.workflow, {})}
        for s in plan.steps
    ]
    return {"error": None, "svg": plan_graph(nodes), "steps": steps, "goal": plan.goal}


def _depends_on(step: dict[str, Any]) -> list[str]:
    """The steps a recorded step waits for: its `after` and the steps its inputs refer to."""
    refs = [
        str(v["ref"]).split(".", 1)[0]
        for v in step.get("inputs", {}).values()
        if isinstance(v, dict) and "ref" in v
    ]
    return list(dict.fromkeys([*step.get("after", []), *refs]))
