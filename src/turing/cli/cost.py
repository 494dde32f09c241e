"""`turing estimate`: what the pending backlog will cost before any of it is spent."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from turing.cli._shared import JsonOpt, WorkflowOpt, _names, _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json
from turing.estimate import Estimate, estimate
from turing.orchestrator import Orchestrator


def backlog_estimate(orch: Orchestrator, names: list[str] | None, sample: int = 20) -> Estimate:
    """The estimate of the selected workflows' backlog (every workflow when None)."""
    chosen = [orch.registry.get(n) for n in names] if names else list(orch.registry)
    executor = orch.executor
    return estimate(orch.store, chosen, executor.resolve, executor.fingerprint, sample=sample)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_estimate(found: Estimate, *, title: str = "estimate of the pending backlog") -> None:
    out = state.out
    for b in found.backlog.values():
        if b.error:
            state.err.print(f"[red]error:[/] {escape(b.error)} (only its queued tasks counted)")
    table = Table(
        "workflow", "step", "actor", "tasks", "prompt tok", "answer tok", "calls/task",
        "cost", "batch cost", title=title,
    )  # fmt: skip
    for s in found.steps:
        table.add_row(
            s.workflow,
            s.step,
            escape(s.actor),
            f"{s.tasks:,}",
            f"{s.prompt_tokens:,}" + ("+" if s.partial else ""),
            f"{s.answer_tokens:,}",
            f"{s.calls_per_task:.2f}",
            _money(s.cost),
            _money(s.batch_cost),
        )
    out.print(table)
    total = found.as_dict()
    out.print(
        f"{total['tasks']:,} task(s): {total['prompt_tokens']:,} prompt + "
        f"{total['answer_tokens']:,} answer tokens; cost {found.cost:.4f} synchronously, "
        f"{found.batch_cost:.4f} by batch where the provider has one"
    )
    notes = sorted({f"{s.actor}: tokens {s.tokenizer}" for s in found.steps})
    notes += sorted({f"{s.workflow}/{s.step}: history {s.history}" for s in found.steps})
    if any(s.partial for s in found.steps):
        notes.append("+: the prompt needs an earlier step's output (a lower bound)")
    if any(s.cost is None for s in found.steps):
        notes.append("-: no prices for the actor (price_input/price_output in [actors.NAME])")
    for note in notes:
        out.print(f"  {escape(note)}", highlight=False)


@app.command("estimate")
def estimate_cmd(
    workflow: WorkflowOpt = None,
    sample: Annotated[
        int, typer.Option("--sample", help="Tasks whose prompts are rendered and counted.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Estimate the pending backlog's tokens and cost, before spending anything.

    Per workflow and LLM step: tasks waiting (queued, plus what discovery would enqueue),
    prompt tokens counted on a sample of rendered prompts (tiktoken for OpenAI models with
    turing[estimate], else ~4 characters a token), answer tokens and calls per task from
    history (defaults without), cost at the actor's prices, synchronously and by batch.
    Nothing is enqueued and no model is called. Exit code 1 when a source failed (the
    others are still estimated).

    Example: turing estimate --workflow job_skills --sample 50 --json
    """
    if sample < 1:
        raise UsageProblem("--sample must be at least 1")
    orch = _orchestrator()
    try:
        found = backlog_estimate(orch, _names(orch, workflow), sample)
    finally:
        orch.close()
    if as_json:
        _print_json(found.as_dict())
    else:
        print_estimate(found)
    if any(b.error for b in found.backlog.values()):
        raise typer.Exit(1)
