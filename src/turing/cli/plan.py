"""`turing plan`: a goal in words -> a checked plan, shown; with --execute, run and report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from turing.cli._shared import JsonOpt, _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json
from turing.planning import (
    Catalog,
    Plan,
    PlanLimits,
    PlanReport,
    PlanRunner,
    StepReport,
    mermaid,
    outline,
    parse_plan,
    plan_schema,
)


@app.command()
def plan(
    goal: Annotated[
        str | None, typer.Argument(help="What to do, in words (omit with --file or --schema).")
    ] = None,
    execute: Annotated[
        bool, typer.Option("--execute", "-x", help="Run the plan after showing it.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Run the plan, models included, writing nothing to the database."
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Plan with this actor (an actor name from turing.toml, or provider:model); "
            "default: the offline planner, no model needed.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Check (and run) this plan JSON instead of planning."),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="The date 'today' means (YYYY-MM-DD; default: UTC today)."),
    ] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Most steps a plan may have.")] = 20,
    max_fan_out: Annotated[
        int, typer.Option("--max-fan-out", help="Most tasks one for_each step may fan out to.")
    ] = 10_000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Tasks in flight at once, per step.")
    ] = 8,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the plan JSON Schema for this project.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Turn a goal into a plan of registered workflows, check it, show it; --execute runs it.

    The plan is shown as an outline and as Mermaid graph text before anything runs.

    Steps with for_each fan out through the task queue, as in `turing run`.

    A failed step skips the steps that depend on it.

    Example: turing plan "Extract skills from jobs fetched today, then match top 5" --execute
    """
    if concurrency < 1:
        raise UsageProblem("--concurrency must be at least 1")
    limits = PlanLimits(max_steps=max_steps, max_fan_out=max_fan_out)
    day = _day(today)
    orch = _orchestrator(concurrency)
    try:
        catalog = Catalog.from_registry(orch.registry)
        if schema:
            _print_json(plan_schema(catalog, limits))
            return
        the_plan = _make_plan(orch, catalog, goal, file, model, day, limits)
        if not as_json:
            _show(the_plan)
        if not (execute or dry_run):
            if as_json:
                _print_json(_plan_json(the_plan))
            return
        report = _run(orch, the_plan, dry_run, limits, quiet=as_json)
    finally:
        orch.close()
    if as_json:
        _print_json(report.as_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _day(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageProblem(f"--today {text!r} is not a date like 2026-11-24") from None


def _make_plan(
    orch: Any,
    catalog: Catalog,
    goal: str | None,
    file: Path | None,
    model: str | None,
    today: dt.date | None,
    limits: PlanLimits,
) -> Plan:
    if file is not None:
        if goal is not None or model is not None:
            raise UsageProblem("give either a goal or --file, not both (--model plans a goal)")
        try:
            data = json.loads(file.read_text("utf-8"))
        except OSError as exc:
            raise UsageProblem(f"cannot read {file}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise UsageProblem(f"{file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
        return parse_plan(data, catalog, limits, planner=f"file:{file.name}")
    if not goal or not goal.strip():
        raise UsageProblem('give a goal, e.g. turing plan "extract skills from jobs fetched today"')
    found: Plan = orch.plan(goal, model=model, today=today, limits=limits)  # validated
    return found


def _plan_json(the_plan: Plan) -> dict[str, Any]:
    return {
        "planner": the_plan.planner,
        "notes": list(the_plan.notes),
        "plan": the_plan.as_dict(),
        "mermaid": mermaid(the_plan),
    }


def _show(the_plan: Plan) -> None:
    out = state.out
    out.print(escape(outline(the_plan)))
    for note in the_plan.notes:
        out.print(f"  [dim]note: {escape(note)}[/]")
    out.print("\n[bold]Mermaid[/]:")
    out.print(escape(mermaid(the_plan)), highlight=False)
    out.print()


def _table(report: PlanReport) -> Table:
    title = "plan report" + (" (DRY RUN: nothing written)" if report.dry_run else "")
    table = Table(
        "step", "workflow", "status", "tasks", "ok", "failed", "time", "tokens", title=title
    )
    table.columns[1].no_wrap = table.columns[2].no_wrap = True
    for s in report.steps.values():
        colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}.get(s.status, "")
        status = f"[{colour}]{s.status}[/]" if colour else s.status
        table.add_row(
            s.id,
            s.workflow,
            status,
            str(s.tasks),
            str(s.succeeded),
            str(s.failed),
            f"{s.duration_s:.1f}s",
            f"{s.tokens:,}",
        )
    return table


def _run(
    orch: Any, the_plan: Plan, dry_run: bool, limits: PlanLimits, *, quiet: bool
) -> PlanReport:
    runner = PlanRunner(orch, limits)
    if quiet or not state.err.is_terminal:  # a live view only where someone watches
        return runner.run(the_plan, dry_run=dry_run)
    live_report = PlanReport.waiting(the_plan, dry_run=dry_run)
    with Live(_table(live_report), console=state.err, refresh_per_second=4) as live:

        def on_event(_kind: str, step: StepReport) -> None:
            live_report.steps[step.id] = step
            live.update(_table(live_report))

        report = runner.run(the_plan, dry_run=dry_run, on_event=on_event)
        live.update(_table(report))
    return report


def _print_report(report: PlanReport) -> None:
    out = state.out
    out.print(_table(report))
    for s in report.steps.values():
        if s.already_done:
            out.print(f"{s.id}: {s.already_done} item(s) were already done before this plan")
        if s.previously_failed:
            out.print(
                f"{s.id}: {s.previously_failed} item(s) had failed before this plan "
                "(`turing retry` requeues them)"
            )
        if s.held:
            out.print(f"{s.id}: {s.held} item(s) held for review (turing review list)")
        if s.status == "skipped":
            out.print(f"[yellow]{s.id} skipped[/]: {escape(s.reason or '')}")
        elif s.status == "failed":
            out.print(f"[red]{s.id} failed[/]: {escape(s.reason or '')}")
    out.print(f"[bold]{report.status}[/] in {report.duration_s:.1f}s")
