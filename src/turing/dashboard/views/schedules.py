"""Schedules: each configured schedule with its cron, next tick and its last fired tick
(who fired it, how many tasks, any error); ticks of schedules no longer configured too."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard
from turing.schedules import schedules_from_config
from turing.store.schedules import TickStore


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        now = ctx.clock()
        configured = schedules_from_config(ctx.project.config) if ctx.project else []
        last = TickStore(ctx.store.db).last()
        rows: list[dict[str, Any]] = [
            {
                "name": s.name,
                "describe": s.describe(),
                "next": s.next_tick(now),
                "tick": last.get(s.name),
            }
            for s in configured
        ]
        known = {s.name for s in configured}
        rows += [
            {"name": name, "describe": "(not configured now)", "next": None, "tick": tick}
            for name, tick in sorted(last.items())
            if name not in known
        ]
        return ctx.render(request, "schedules.html", title="Schedules", rows=rows)

    return [Route("/schedules", page)]
