"""Pausing and resuming a workflow (no worker claims a paused workflow's tasks; running
ones finish), through `turing.ops.Operations`."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard
from turing.errors import TuringError


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def toggle(request: Request) -> Response:
        name = str(request.path_params["name"])
        verb = str(request.path_params["verb"])
        form = await ctx.form(request)
        ops = ctx.ops(request.state.session)
        try:
            if verb == "pause":
                ops.pause(name, str(form.get("reason", "")).strip())
            elif verb == "resume":
                ops.resume(name)
            else:
                raise HTTPException(404, f"unknown verb {verb!r}")
        except TuringError as exc:
            raise HTTPException(400, str(exc)) from exc
        return RedirectResponse("/", status_code=303)

    return [Route("/workflows/{name}/{verb}", toggle, methods=["POST"])]
