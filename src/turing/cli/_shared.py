"""What many commands share: the orchestrator built from the project and its options, and
the common options (`--workflow`, `--json`). Below every command module, so none of them
imports another for these."""

from __future__ import annotations

from typing import Annotated

import typer

from turing.cli.app import state
from turing.observe import Observer
from turing.orchestrator import DEFAULT_LEASE_S, BatchLimits, Orchestrator

WorkflowOpt = Annotated[
    list[str] | None,
    typer.Option("--workflow", "-w", help="Only this workflow (name or alias); repeatable."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _orchestrator(
    concurrency: int = 8,
    *,
    no_cache: bool = False,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    observer: Observer | None = None,
) -> Orchestrator:
    project = state.project()
    limits = project.config.limits
    batch = BatchLimits(
        max_tokens if max_tokens is not None else limits.batch_tokens,
        max_cost if max_cost is not None else limits.batch_cost,
    )
    return Orchestrator.from_project(
        project,
        use_cache=not no_cache,
        concurrency=concurrency,
        batch_limits=batch,
        lease_s=lease_s,
        observer=observer,
    )


def _names(orch: Orchestrator, workflows: list[str] | None) -> list[str] | None:
    return [orch.registry.get(w).name for w in workflows] if workflows else None
