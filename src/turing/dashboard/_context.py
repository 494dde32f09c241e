"""What every view needs: the reads (`BrowseStore`), the guarded operations (`turing.ops`),
the templates, and the checks a state-changing request must pass."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from turing._net import masked_url
from turing.dashboard._security import Session, csrf_ok, same_origin
from turing.store.browse import BrowseStore

if TYPE_CHECKING:
    from turing.ops import Operations
    from turing.orchestrator import Orchestrator
    from turing.project import Project
    from turing.store.store import Store


@dataclass
class Dashboard:
    """One dashboard's collaborators and settings, built once by `create_app`."""

    store: Store
    orchestrator: Orchestrator | None
    project: Project | None
    token: str | None
    read_only: bool
    who: str
    plans_dir: Path | None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.browse = BrowseStore(self.store.db)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("turing.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        filters: dict[str, Callable[[Any], str]] = {
            "when": when,
            "ago": ago,
            "ms": lambda v: "" if v is None else f"{float(v):,.0f} ms",
            "money": lambda v: f"{float(v or 0):.4f}",
            "num": lambda v: f"{int(v or 0):,}",
            "pct": lambda v: "–" if v is None else f"{100 * float(v):.1f}%",
            "pretty": pretty_json,
            "masked": masked_text,
        }
        self.env.filters |= filters

    @property
    def controls(self) -> bool:
        """Whether controls are shown and accepted: not read-only, and an orchestrator
        (the operations need its registry and sources)."""
        return not self.read_only and self.orchestrator is not None

    def workflows(self) -> list[str]:
        """Workflow names for the filters: the registry's (a few rows), never a scan of
        the queue."""
        names = {str(r["name"]) for r in self.store.registry()}
        if self.orchestrator is not None:
            names |= {wf.name for wf in self.orchestrator.registry}
        return sorted(names)

    def ops(self, session: Session) -> Operations:
        from turing.ops import Operations

        assert self.orchestrator is not None
        return Operations(self.orchestrator, who=session.who)

    def ops_log(self, task_id: int) -> list[Any]:
        """What people did to a task (the audit log the operations write)."""
        from turing.store.ops import OpsStore

        rows: list[Any] = OpsStore(self.store.db).actions(task_id=task_id, limit=50)
        return rows

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        session: Session | None = request.state.session
        page = self.env.get_template(template).render(
            request=request,
            session=session,
            csrf=session.csrf if session else "",
            controls=self.controls,
            read_only=self.read_only,
            login=self.token is not None,
            database=masked_url(self.store.db.url),
            path=request.url.path,
            now=self.clock(),
            **values,
        )
        return HTMLResponse(page, status_code=status)

    async def form(self, request: Request, *, control: bool = True) -> Mapping[str, Any]:
        """The form of a state-changing POST, after every check: controls on (for a
        `control`), same origin, the session's CSRF token."""
        if control and not self.controls:
            raise HTTPException(403, "this dashboard is read-only")
        headers = request.headers
        if not same_origin(headers.get("origin"), headers.get("referer"), headers.get("host")):
            raise HTTPException(403, "cross-origin request refused")
        form = await request.form()
        if not csrf_ok(request.state.session, _text(form.get("csrf"))):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        return form


def json_object(text: str, what: str) -> dict[str, Any] | None:
    """A form field holding a JSON object (None when left empty); anything else is a 400
    naming `what`."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise HTTPException(400, f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise HTTPException(400, f"{what} must be a JSON object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}m"
    if s < 129_600:
        return f"{s / 3600:.1f}h"
    return f"{s / 86_400:.1f}d"


_CREDENTIALS = re.compile(r"(://[^/:@\s]*):[^/@\s]*@")


def masked_text(text: str | None) -> str:
    """Text with the password of every URL in it replaced by *** (actor identities carry
    their base URL)."""
    return _CREDENTIALS.sub(r"\1:***@", text or "")


def pretty_json(value: Any) -> str:
    """JSON text (or a value) indented for reading; text that is not JSON as it is."""
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
