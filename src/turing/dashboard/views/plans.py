"""Plans drawn as graphs: the plan JSON files of the project's `plans/` folder (what
`turing plan --json` prints and `turing plan --file` runs), checked against the registry,
each step a box in dependency order with its workflow's tasks as a progress bar."""

from __future__ import annotations

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

MAX_PLANS = 200


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def listing(request: Request) -> Response:
        files = _files(ctx.plans_dir)
        return ctx.render(request, "plans.html", title="Plans", files=files, folder=ctx.plans_dir)

    async def one(request: Request) -> Response:
        name = str(request.path_params["name"])
        path = _files(ctx.plans_dir).get(name)
        if path is None:
            raise HTTPException(404, f"no plan named {name!r} in the plans folder")
        values = plan_view(ctx, path)
        return ctx.render(request, "plan.html", title=f"Plan {name}", name=name, **values)

    return [Route("/plans", listing), Route("/plans/{name}", one)]


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
