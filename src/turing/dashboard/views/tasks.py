"""Tasks: the filtered list (keyset pages, newest first), one task with its runs, and the
controls on tasks (retry, cancel, requeue), one task, the ticked ones, or every task the
filter matches. Controls go through `turing.ops.Operations`, as the CLI's do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard, json_object
from turing.errors import TuringError
from turing.stats import parse_duration
from turing.store.browse import STATUSES, TaskFilter

PAGE = 50
SINCE = {"": "any time", "1h": "last hour", "24h": "last day", "7d": "last week"}
VERBS = ("retry", "cancel", "requeue")


def routes(ctx: Dashboard) -> list[BaseRoute]:
    async def listing(request: Request) -> Response:
        q = request.query_params
        f = task_filter(q, ctx.clock())
        before = _int(q.get("before"))
        page = ctx.browse.tasks(f, before=before, limit=PAGE)
        kept = {k: v for k, v in filter_fields(q).items() if v}
        return ctx.render(
            request,
            "tasks.html",
            title="Tasks",
            rows=page.rows,
            filters=filter_fields(q),
            query=urlencode(kept),
            next_url=(
                f"/tasks?{urlencode(kept | {'before': page.next_before})}"
                if page.next_before is not None
                else None
            ),
            first_url=f"/tasks?{urlencode(kept)}" if before is not None else None,
            statuses=STATUSES,
            since_choices=SINCE,
            workflows=ctx.workflows(),
            verbs=VERBS,
        )

    async def one(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])
        task = ctx.browse.task(task_id)
        if task is None:
            raise HTTPException(404, f"no task with id {task_id}")
        return ctx.render(
            request,
            "task.html",
            title=f"Task {task_id}",
            task=task,
            runs=ctx.browse.task_runs(task_id),
            actions=ctx.ops_log(task_id),
        )

    async def act(request: Request) -> Response:
        form = await ctx.form(request)
        verb = str(form.get("verb", ""))
        if verb not in VERBS:
            raise HTTPException(400, f"unknown action {verb!r} (one of {', '.join(VERBS)})")
        if form.get("scope") == "filter":
            f = task_filter(form, ctx.clock())
            ids = ctx.browse.task_ids(f)
        else:
            ids = [int(v) for v in form.getlist("id") if str(v).isdigit()]  # type: ignore[attr-defined]
        if not ids:
            raise HTTPException(400, "no task selected: tick some, or act on the whole filter")
        new_input = _new_input(form) if verb == "requeue" else None
        ops = ctx.ops(request.state.session)
        try:
            if verb == "retry":
                result = ops.retry(ids)
            elif verb == "cancel":
                result = ops.cancel(
                    ids, str(form.get("reason", "")) or "cancelled in the dashboard"
                )
            else:
                result = ops.requeue(ids, new_input)
        except TuringError as exc:
            raise HTTPException(400, str(exc)) from exc
        return ctx.render(
            request,
            "result.html",
            title=f"{verb.capitalize()}: {len(result.done)} done",
            verb=verb,
            result=result,
            back=_back(form),
        )

    return [
        Route("/tasks", listing),
        Route("/tasks/{task_id:int}", one),
        Route("/tasks/actions", act, methods=["POST"]),
    ]


def filter_fields(q: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(q.get(k) or "").strip() for k in ("workflow", "status", "reason", "since", "q")}


def task_filter(q: Mapping[str, Any] | QueryParams, now: float) -> TaskFilter:
    fields = filter_fields(q)
    since = fields["since"]
    try:
        return TaskFilter(
            workflow=fields["workflow"] or None,
            status=fields["status"] or None,
            reason=fields["reason"] or None,
            since=now - parse_duration(since) if since else None,
            subject=fields["q"] or None,
        )
    except (ValueError, TuringError) as exc:
        raise HTTPException(400, f"bad filter: {exc}") from exc


def _new_input(form: Mapping[str, Any]) -> dict[str, Any] | None:
    return json_object(str(form.get("input", "")), "the new input")


def _back(form: Mapping[str, Any]) -> str:
    target = str(form.get("back", "/tasks"))
    return target if target.startswith("/") and not target.startswith("//") else "/tasks"


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
