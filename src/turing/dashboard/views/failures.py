"""Failures grouped by reason (the error kind a failed task's last error starts with) and
workflow, each linking to its tasks."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        groups = ctx.browse.failures()
        links = {
            (g.reason, g.workflow): "/tasks?"
            + urlencode({"workflow": g.workflow, "status": "failed", "reason": g.reason})
            for g in groups
        }
        return ctx.render(
            request,
            "failures.html",
            title="Failures",
            groups=groups,
            links=links,
            total=sum(g.n for g in groups),
        )

    return [Route("/failures", page)]
