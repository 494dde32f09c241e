"""The typer application and the state shared by its commands (--config, --debug)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from turing.project import Project

app = typer.Typer(
    name="turing",
    help=(
        "Find the rows that still need LLM work and run contract-validated workflows on them.\n\n"
        'Example: turing exec job_skills --input \'{"posting_id": 1, "title": "...", '
        '"description": "..."}\''
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@dataclass
class State:
    config: Path | None = None
    debug: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(
        default_factory=lambda: Console(stderr=True, soft_wrap=True, highlight=False)
    )
    _project: Project | None = None

    def project(self) -> Project:
        if self._project is None:
            self._project = Project.load(self.config)
        return self._project


state = State()


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Project file (default: TURING_CONFIG or ./turing.toml)."
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks on errors (also accepted after the subcommand)."
        ),
    ] = False,
) -> None:
    state.config = config
    state.debug = debug
    state._project = None
