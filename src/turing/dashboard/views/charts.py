"""Charts: call latency percentiles per workflow step, and cost (with runs and failures)
over time, drawn on the server as SVG."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard
from turing.dashboard._svg import cost_columns, latency_bars
from turing.stats import Percentiles

WINDOWS = {"1h": (3600, 300), "24h": (86_400, 3600), "7d": (7 * 86_400, 86_400 / 4)}


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        window = request.query_params.get("window", "24h")
        if window not in WINDOWS:
            window = "24h"
        span, bucket = WINDOWS[window]
        now = ctx.clock()
        since = now - span
        latency = [
            (f"{wf} · {step}", p)
            for (wf, step), values in sorted(ctx.browse.latencies(since).items())
            if (p := Percentiles.of(values)) is not None
        ]
        buckets = ctx.browse.cost_buckets(since, bucket)
        return ctx.render(
            request,
            "charts.html",
            title="Charts",
            window=window,
            windows=list(WINDOWS),
            latency=latency,
            latency_svg=latency_bars(latency),
            cost_svg=cost_columns(buckets, bucket, since, now),
            total_cost=sum(b.cost for b in buckets),
            total_runs=sum(b.runs for b in buckets),
        )

    return [Route("/charts", page)]
