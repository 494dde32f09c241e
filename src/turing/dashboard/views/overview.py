"""The overview: the queue by workflow and status, throughput and failure rate over the
last hour and day, cost today, live workers, limits and budgets in use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing._net import masked_url
from turing.config import ActorTable
from turing.dashboard._context import Dashboard
from turing.store.browse import STATUSES


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        return ctx.render(request, "overview.html", **overview(ctx))

    return [Route("/", page)]


def overview(ctx: Dashboard) -> dict[str, Any]:
    now = ctx.clock()
    browse = ctx.browse
    queue = browse.queue()
    names = sorted(set(queue) | set(ctx.workflows()))
    totals = {s: sum(queue.get(w, {}).get(s, 0) for w in names) for s in STATUSES}
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    configured: list[tuple[str, str, str]] = []
    actors: list[dict[str, str]] = []
    if ctx.project is not None:
        actors = [_actor(name, a) for name, a in sorted(ctx.project.config.actors.items())]
        limits = ctx.project.config.limits
        configured += [("concurrency", k, str(v)) for k, v in sorted(limits.concurrency.items())]
        configured += [("rate", k, ", ".join(v)) for k, v in sorted(limits.rate.items())]
        configured += [("budget", k, ", ".join(v)) for k, v in sorted(limits.budget.items())]
    workers = browse.workers()
    return {
        "title": "Overview",
        "statuses": STATUSES,
        "queue": [(w, queue.get(w, {}), sum(queue.get(w, {}).values())) for w in names],
        "totals": totals,
        "hour": browse.window(now - 3600),
        "day": browse.window(now - 86_400),
        "today": browse.window(midnight.timestamp()),
        "workers": [(w, w.age(now), w.live(now)) for w in workers],
        "paused": {r["workflow"]: r for r in browse.paused()},
        "limits": sorted(browse.limits_in_use(now).items()),
        "budgets": browse.budgets(now),
        "configured": configured,
        "actors": actors,
    }


def _actor(name: str, table: str | ActorTable) -> dict[str, str]:
    """What the page shows of an actor: never a key, only the variable that holds it, and
    a base URL without its password."""
    if isinstance(table, str):
        return {"name": name, "spec": table, "base_url": "", "key_from": ""}
    spec = table.spec or f"{table.provider or ''}:{table.model or ''}"
    return {
        "name": name,
        "spec": spec,
        "base_url": masked_url(table.base_url or ""),
        "key_from": table.api_key_env or "",
    }
