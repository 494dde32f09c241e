"""The web dashboard (`turing dashboard`): the queue, tasks, runs, failures, schedules,
plans, charts and the review queue, with the same guarded controls as the CLI.

Needs the `web` extra (`pip install 'turing[web]'`); `create_app` names it when missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Starlette:
    """The dashboard as an ASGI app (see `turing.dashboard.app.create_app`)."""
    try:
        from turing.dashboard.app import create_app as _create
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("starlette", "multipart", "python_multipart"):
            from turing.errors import ConfigError

            raise ConfigError(f"the dashboard needs {exc.name}: pip install 'turing[web]'") from exc
        raise
    return _create(*args, **kwargs)
