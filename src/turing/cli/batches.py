"""`turing batches`: the provider batches (OpenAI Batch API, Anthropic Message Batches) that
hold tasks: list, show, poll (ingest what ended now), cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from turing.batch.runner import BatchReport
from turing.cli._shared import _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json
from turing.orchestrator import Orchestrator
from turing.store.batches import Batches

T = TypeVar("T")

batches_app = typer.Typer(
    help=(
        "Provider batches (half-price OpenAI / Anthropic batch APIs) holding tasks: list, "
        'show, poll, cancel. An actor with batch = "on" or "auto" in turing.toml sends '
        "its workflows' tasks through them.\n\nExample: turing batches list"
    ),
    no_args_is_help=True,
)
app.add_typer(batches_app, name="batches")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _with_orchestrator(work: Callable[[Orchestrator], Awaitable[T]]) -> T:
    """Run `work` inside a processing session (ingested tasks keep their leases)."""
    orch = _orchestrator()

    async def run() -> T:
        async with orch.session():
            return await work(orch)

    try:
        return asyncio.run(run())
    finally:
        orch.close()


def _say(report: BatchReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.as_dict())
        return
    for batch_id, n in report.submitted.items():
        state.out.print(f"batch {batch_id}: {n} task(s) submitted")
    state.out.print(
        f"{report.polled} batch(es) polled: {report.succeeded} task(s) succeeded, "
        f"{report.failed} failed, {report.reasked} re-asked in the next batch, "
        f"{report.returned} returned to pending"
    )
    for batch_id, status in report.finished.items():
        state.out.print(f"batch {batch_id}: {status}")
    for note in report.notes:
        state.err.print(escape(note), highlight=False)


@batches_app.command("list")
def batches_list(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only batches still submitting or submitted.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest first, at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The newest batches: status, provider id, requests and what became of them.

    Example: turing batches list --open
    """
    orch = _orchestrator()
    try:
        rows = Batches(orch.store).recent(open_only=open_only, limit=limit)
    finally:
        orch.close()
    if as_json:
        _print_json([r.as_dict() for r in rows])
        return
    if not rows:
        state.out.print("no batches" + (" open" if open_only else ""))
        return
    table = Table(
        "id", "actor", "provider", "status", "provider status", "requests", "items", "submitted"
    )
    for r in rows:
        items = ", ".join(f"{k} {v}" for k, v in sorted(r.items.items()))
        table.add_row(
            str(r.id),
            r.actor,
            f"{r.provider} {r.provider_batch_id or '-'}",
            r.status,
            r.provider_status or "-",
            str(r.requests),
            items,
            _when(r.submitted_at),
        )
    state.out.print(table)


@batches_app.command("show")
def batches_show(
    batch_id: Annotated[int, typer.Argument(help="The batch's id (turing batches list).")],
    as_json: JsonOpt = False,
) -> None:
    """One batch with its items: task, attempt, round, custom id and state.

    Example: turing batches show 3 --json
    """
    orch = _orchestrator()
    try:
        store = Batches(orch.store)
        row = store.get(batch_id)
        items = store.items(batch_id) if row is not None else []
    finally:
        orch.close()
    if row is None:
        raise UsageProblem(f"no batch {batch_id} (turing batches list shows them)")
    if as_json:
        _print_json(row.as_dict() | {"items_detail": [i.as_dict() for i in items]})
        return
    fields: dict[str, Any] = row.as_dict()
    for key in ("created_at", "submitted_at", "expires_at", "polled_at", "finished_at"):
        fields[key] = _when(fields[key])
    for key, value in fields.items():
        state.out.print(f"{key}: {escape(str(value))}", highlight=False)
    table = Table("task", "attempt", "round", "custom id", "state", "tokens", "error")
    for i in items:
        table.add_row(
            str(i.task_id),
            str(i.attempt),
            str(i.round),
            i.custom_id,
            i.state,
            f"{i.input_tokens}+{i.output_tokens}",
            escape(i.error or ""),
        )
    state.out.print(table)


@batches_app.command("poll")
def batches_poll(as_json: JsonOpt = False) -> None:
    """Look at every open batch now and ingest those that ended (a worker does this every
    `batch_poll` by itself).

    Example: turing batches poll
    """
    report = _with_orchestrator(lambda orch: orch.batcher.poll(force=True))
    _say(report, as_json)


@batches_app.command("submit")
def batches_submit(as_json: JsonOpt = False) -> None:
    """Submit what is pending for every batch-enabled actor now, whatever "auto" would wait
    for (`turing run` and workers submit when due).

    Example: turing batches submit
    """

    async def submit(orch: Orchestrator) -> BatchReport:
        report = BatchReport(notes=list(orch.batcher.notes))
        for lane in orch.batcher.lanes:
            await orch.batcher.submit(lane, report=report)
        if not orch.batcher.lanes:
            report.notes.append('no actor has batch = "on" or "auto" in this project')
        return report

    _say(_with_orchestrator(submit), as_json)


@batches_app.command("cancel")
def batches_cancel(
    batch_id: Annotated[int, typer.Argument(help="The batch's id (turing batches list).")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a batch at the provider, ingest what it finished, return the rest to pending
    (attempts not counted).

    Example: turing batches cancel 3
    """
    report = _with_orchestrator(lambda orch: orch.batcher.cancel(batch_id))
    _say(report, as_json)
