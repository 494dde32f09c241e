"""The dashboard as an ASGI app: pages, controls, login, static files and `/metrics`.

    from turing import Orchestrator
    from turing.dashboard import create_app

    app = create_app(Orchestrator.from_config("turing.toml"), token="s3cret")
    # uvicorn.run(app), or mount it: Mount("/turing", app=app)

Without an orchestrator (a bare `store`) the pages work and the controls are off: the
operations need the workflows' registry and sources.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from turing._net import is_loopback
from turing.dashboard._context import Dashboard
from turing.dashboard._security import (
    COOKIE,
    Session,
    Signer,
    bearer,
    clean_name,
    new_session,
    same_origin,
    token_matches,
)
from turing.dashboard.views import (
    charts,
    failures,
    overview,
    plans,
    quality,
    reviews,
    runs,
    schedules,
    tasks,
    workflows,
)

if TYPE_CHECKING:
    from turing.orchestrator import Orchestrator
    from turing.project import Project
    from turing.store.store import Store

_OPEN = ("/static/", "/login", "/healthz")
_STATIC = Path(__file__).parent / "static"


def create_app(
    orchestrator: Orchestrator | None = None,
    *,
    store: Store | None = None,
    project: Project | None = None,
    token: str | None = None,
    read_only: bool = False,
    who: str | None = None,
    plans_dir: Path | str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The dashboard on `orchestrator`'s database (or on `store`, read-only). With `token`
    every page asks for it (login form, cookie; or `Authorization: Bearer`); `who` names
    the person acting when there is no login (default: the OS user)."""
    if orchestrator is None and store is None:
        raise ValueError("give an orchestrator (controls on) or a store (read-only)")
    the_store = orchestrator.store if orchestrator is not None else store
    assert the_store is not None
    if plans_dir is None and project is not None:
        plans_dir = project.root / "plans"
    ctx = Dashboard(
        the_store,
        orchestrator,
        project,
        token or None,
        read_only,
        clean_name(who or "") or _os_user(),
        Path(plans_dir) if plans_dir is not None else None,
        clock,
    )
    signer = Signer()

    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        request.state.session = None
        if ctx.token is None and not is_loopback(
            urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        ):
            # no token: this machine only, whatever name a page was loaded under (a site
            # rebinding its own name to 127.0.0.1 is refused here)
            return PlainTextResponse("without a token this dashboard answers on loopback only", 403)
        fresh: Session | None = None
        if ctx.token is not None:
            given = bearer(request.headers.get("authorization"))
            if given is not None:
                if not token_matches(given, ctx.token):
                    return JSONResponse({"error": "wrong token"}, status_code=401)
                who = clean_name(request.headers.get("x-turing-who", "")) or ctx.who
                request.state.session = Session(who, "", bearer=True)
            else:
                request.state.session = signer.load(request.cookies.get(COOKIE))
            if request.state.session is None and not path.startswith(_OPEN):
                if request.method == "GET":
                    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
                return JSONResponse({"error": "log in first"}, status_code=401)
        else:
            request.state.session = signer.load(request.cookies.get(COOKIE))
            if request.state.session is None:
                fresh = request.state.session = new_session(ctx.who)
        response = await call_next(request)
        if fresh is not None:
            _set_cookie(response, signer.dump(fresh))
        response.headers.setdefault("x-frame-options", "DENY")
        response.headers.setdefault("referrer-policy", "same-origin")
        response.headers.setdefault(
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        )
        return response

    async def login_page(request: Request) -> Response:
        if ctx.token is None:
            return RedirectResponse("/", status_code=303)
        return ctx.render(
            request, "login.html", title="Log in", next=_local(request.query_params.get("next"))
        )

    async def login(request: Request) -> Response:
        if ctx.token is None:
            return RedirectResponse("/", status_code=303)
        headers = request.headers
        if not same_origin(headers.get("origin"), headers.get("referer"), headers.get("host")):
            raise HTTPException(403, "cross-origin request refused")
        form = await request.form()
        given, name = str(form.get("token", "")), clean_name(str(form.get("name", "")))
        nxt = _local(str(form.get("next", "/")))
        if not token_matches(given, ctx.token) or not name:
            problem = "wrong token" if name else "give your name (it is recorded with decisions)"
            return ctx.render(
                request, "login.html", status=401, title="Log in", next=nxt, error=problem
            )
        response = RedirectResponse(nxt, status_code=303)
        _set_cookie(response, signer.dump(new_session(name)))
        return response

    async def logout(request: Request) -> Response:
        await ctx.form(request, control=False)
        response = RedirectResponse("/login" if ctx.token else "/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if getattr(request.state, "session", None) is None:
            return HTMLResponse(f"<p>{exc.status_code}: {exc.detail}</p>", exc.status_code)
        return ctx.render(request, "message.html", status=exc.status_code, title="Refused",
                          message=str(exc.detail))  # fmt: skip

    routes: list[BaseRoute] = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/static", app=StaticFiles(directory=_STATIC), name="static"),
    ]
    for module in (
        overview,
        tasks,
        runs,
        failures,
        schedules,
        plans,
        charts,
        quality,
        reviews,
        workflows,
    ):
        routes += module.routes(ctx)
    metrics = _metrics_app(ctx.store)
    if metrics is not None:
        routes.append(Mount("/metrics", app=metrics))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.dashboard = ctx
    return app


def _set_cookie(response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="strict", max_age=7 * 86_400)


def _local(target: str | None) -> str:
    """A redirect target on this server only (never `//evil.example` or a full URL)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "dashboard"


def _metrics_app(store: Store) -> Any:
    """Prometheus metrics of the queue (turing.observe) when prometheus_client is installed."""
    try:
        from turing.observe.metrics import metrics_app

        return metrics_app(store)
    except ImportError:
        return None
