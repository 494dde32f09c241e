"""A run's full story: input, each attempt's prompt and raw answer with its violations,
the repairs, the output, timings, tokens, cost and the fingerprint (what `turing runs
show` prints)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def one(request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        run = ctx.store.run(run_id)
        if run is None:
            raise HTTPException(404, f"no run with id {run_id}")
        calls = [
            call
            | {
                "messages_list": _loads(call["messages"], []),
                "violations_list": _loads(call["violations"], []),
            }
            for call in run["calls_detail"]
        ]
        return ctx.render(request, "run.html", title=f"Run {run_id}", run=run, calls=calls)

    return [Route("/runs/{run_id:int}", one)]


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default
