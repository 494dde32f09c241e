"""The review queue: held tasks oldest first (keyset by task id), one item with its held
output and input, and the decisions (approve, approve an edit, reject, reject and re-ask),
each through `turing.ops.Operations` as `turing review` does."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from turing.dashboard._context import Dashboard, json_object
from turing.errors import TuringError
from turing.store.ops import OpsStore

PAGE = 50


def routes(ctx: Dashboard) -> list[BaseRoute]:
    store = OpsStore(ctx.store.db)

    async def listing(request: Request) -> Response:
        workflow = request.query_params.get("workflow") or None
        after = request.query_params.get("after", "")
        items = store.reviews(
            [workflow] if workflow else None,
            after=int(after) if after.isdigit() else 0,
            limit=PAGE + 1,
        )
        more = len(items) > PAGE
        items = items[:PAGE]
        next_url = None
        if more:
            extra = f"&workflow={workflow}" if workflow else ""
            next_url = f"/reviews?after={items[-1].task_id}{extra}"
        return ctx.render(
            request,
            "reviews.html",
            title="Review",
            items=items,
            workflow=workflow or "",
            workflows=ctx.workflows(),
            next_url=next_url,
        )

    async def one(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])
        item = store.review(task_id)
        if item is None:
            raise HTTPException(404, f"task {task_id} is not held for review")
        return ctx.render(request, "review.html", title=f"Review task {task_id}", item=item)

    async def decide(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])
        form = await ctx.form(request)
        decision = str(form.get("decision", ""))
        comment = str(form.get("comment", "")).strip()
        ops = ctx.ops(request.state.session)
        try:
            if decision == "approve":
                ok = ops.approve(task_id, _edited(form), comment=comment)
            elif decision in ("reject", "reask"):
                ok = ops.reject(task_id, comment, reask=decision == "reask")
            else:
                raise HTTPException(400, f"unknown decision {decision!r}")
        except TuringError as exc:
            raise HTTPException(400, str(exc)) from exc
        if not ok:
            raise HTTPException(409, f"task {task_id} was decided by someone else first")
        return RedirectResponse(f"/reviews?decided={task_id}", status_code=303)

    return [
        Route("/reviews", listing),
        Route("/reviews/{task_id:int}", one),
        Route("/reviews/{task_id:int}", decide, methods=["POST"]),
    ]


def _edited(form: Any) -> dict[str, Any] | None:
    """The reviewer's edit when it differs from the held output, else None."""
    text = str(form.get("output", "")).strip()
    held = str(form.get("held", "")).strip()
    return None if text == held else json_object(text, "the edited output")
