"""Quality: how good the answers were, per workflow, actor and fingerprint (the figures
`turing stats` prints): first-answer valid rate, re-asks, repairs, check failures by
check, grades, and what the answers thrown away cost."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard
from turing.stats import quality_of
from turing.store.stats import StatsStore

WINDOWS = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400}


def routes(ctx: Dashboard) -> list[BaseRoute]:
    history = StatsStore(ctx.store.db)

    async def page(request: Request) -> Response:
        window = request.query_params.get("window", "24h")
        if window not in WINDOWS:
            window = "24h"
        now = ctx.clock()
        calls = await asyncio.to_thread(history.quality_calls, now - WINDOWS[window], now)
        figures = sorted(quality_of(calls).items())
        return ctx.render(
            request,
            "quality.html",
            title="Quality",
            window=window,
            windows=list(WINDOWS),
            figures=figures,
            thrown_cost=sum(q.thrown_cost for _, q in figures),
        )

    return [Route("/quality", page)]
