"""Command: dashboard, the web dashboard (`turing.dashboard`) served by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from turing._net import is_loopback
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem
from turing.errors import ConfigError


@app.command()
def dashboard(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; anything but loopback needs --token."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="TURING_DASHBOARD_TOKEN",
            help="Ask for this token (login form, or Authorization: Bearer); also read from "
            "TURING_DASHBOARD_TOKEN, which keeps it out of the process list.",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Show everything, offer and accept no control.")
    ] = False,
    who: Annotated[
        str | None,
        typer.Option(
            "--as", help="The name recorded with actions when there is no login (default: you)."
        ),
    ] = None,
) -> None:
    """Serve the web dashboard: queue, tasks, runs, failures, schedules, plans, charts,
    review queue, with the same guarded controls as the CLI, until Ctrl-C.

    Listens on 127.0.0.1 only unless given --token (every page then asks for it).

    Example: turing dashboard --port 8765 --as alice
    """
    if not is_loopback(host) and not token:
        raise UsageProblem(
            f"--host {host} is not a loopback address: anyone who can reach it could act on "
            "your tasks; give --token (or TURING_DASHBOARD_TOKEN), or listen on 127.0.0.1"
        )
    if not 0 < port < 65536:
        raise UsageProblem(f"--port {port}: give a port between 1 and 65535")
    try:
        import uvicorn

        from turing.dashboard.app import create_app
    except ImportError as exc:
        raise ConfigError(f"the dashboard needs {exc.name}: pip install 'turing[web]'") from exc
    from turing.cli._shared import _orchestrator

    orch = _orchestrator()
    try:
        web = create_app(orch, project=state.project(), token=token, read_only=read_only, who=who)
        mode = "read-only" if read_only else "controls on"
        guard = "token required" if token else "no token: this machine only"
        state.out.print(
            f"[bold]Turing dashboard[/] on [bold]http://{host}:{port}[/] ({mode}, {guard}); "
            "Ctrl-C stops it.",
            highlight=False,
        )
        uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)
    finally:
        orch.close()
