"""Operations people run on the queue: review decisions, cancel, requeue, pause, resume,
and the audit log of who did what. The dashboard runs the same `turing.ops` verbs."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from turing.cli._shared import JsonOpt, WorkflowOpt, _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json, _read_input
from turing.ops import ActionResult, Operations
from turing.store.browse import BrowseStore, TaskFilter

review_app = typer.Typer(
    help="Tasks held for review: list, show, approve (optionally edited), reject.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as", help="Who is acting (recorded in the audit log; default TURING_USER or login)."
    ),
]


def _who(name: str | None) -> str:
    return name or os.environ.get("TURING_USER") or getpass.getuser()


def _ops(who: str | None) -> Operations:
    return Operations(_orchestrator(), _who(who))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _say(verb: str, result: ActionResult, as_json: bool) -> None:
    if as_json:
        _print_json(result.as_dict())
    else:
        state.out.print(
            f"{len(result.done)} task(s) {verb}"
            + (f": {', '.join(map(str, result.done))}" if result.done else "")
        )
        for task_id, why in sorted(result.skipped.items()):
            state.err.print(f"task {task_id} left alone: {escape(why)}", highlight=False)
    if result.skipped and not result.done:
        raise typer.Exit(1)


def _close(ops: Operations) -> None:
    ops.orch.close()


StatusOpt = Annotated[
    list[str] | None,
    typer.Option("--status", help="With a filter: only tasks in this status; repeatable."),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason-kind", help="Filter: failed tasks of this error kind.")
]
SubjectOpt = Annotated[str | None, typer.Option("--subject", help="Filter: subjects starting so.")]


def _chosen(
    ops: Operations,
    ids: list[int] | None,
    workflow: list[str] | None,
    statuses: list[str],
    reason: str | None,
    subject: str | None,
) -> list[int]:
    """The ids given, or every task matching the filter (the dashboard's bulk selection)."""
    filtered = bool(workflow or reason or subject)
    if bool(ids) == filtered:
        raise UsageProblem("give task ids, or a filter (--workflow, --reason-kind, --subject)")
    if ids:
        return ids
    names: list[str | None] = [ops.orch.registry.get(w).name for w in workflow or []]
    names = names or [None]
    browse = BrowseStore(ops.orch.store.db)
    found: list[int] = []
    for name in names:
        for status in statuses:
            try:
                query = TaskFilter(name, status, reason, None, subject)
            except ValueError as exc:
                raise UsageProblem(str(exc)) from None
            found += browse.task_ids(query)
    return sorted(set(found))


def _decide(task_ids: list[int], decide: Callable[[int], bool]) -> ActionResult:
    """One review decision per task; one task's problem (not held, an invalid edit, a sink
    that failed) is reported for it and does not stop the others."""
    result = ActionResult()
    for task_id in task_ids:
        try:
            decided = decide(task_id)
        except Exception as exc:
            if state.debug:
                raise
            result.skipped[task_id] = str(exc)
            continue
        if decided:
            result.done.append(task_id)
        else:
            result.skipped[task_id] = "decided by someone else meanwhile"
    return result


# ---------------------------------------------------------------------- review
@review_app.command("list")
def review_list(
    workflow: WorkflowOpt = None,
    after: Annotated[int, typer.Option(help="Only task ids above this (next page).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Tasks held for review, oldest first, with why each was held.

    Example: turing review list --workflow job_skills
    """
    ops = _ops("reader")
    try:
        items = ops.reviews(workflow, after=after, limit=limit)
    finally:
        _close(ops)
    if as_json:
        _print_json([vars(i) for i in items])
        return
    if not items:
        state.out.print("nothing held for review.")
        return
    table = Table("task", "workflow", "subject", "held at (UTC)", "why", title="held for review")
    for i in items:
        table.add_row(str(i.task_id), i.workflow, escape(i.subject), _when(i.held_at),
                      escape(i.reason))  # fmt: skip
    state.out.print(table)
    if len(items) == limit:
        state.out.print(f"more: turing review list --after {items[-1].task_id}")


@review_app.command("show")
def review_show(
    task_id: Annotated[int, typer.Argument(help="The held task's id.")],
    as_json: JsonOpt = False,
) -> None:
    """One held task: its input, the held output and why it was held.

    Example: turing review show 17
    """
    ops = _ops("reader")
    try:
        item = ops.review(task_id)
    finally:
        _close(ops)
    if as_json:
        _print_json(vars(item))
        return
    state.out.print(f"task {item.task_id} · {item.workflow} · subject {escape(item.subject)}")
    state.out.print(f"held at {_when(item.held_at)} (run {item.run_id}): {escape(item.reason)}")
    state.out.print("input:")
    _print_json(item.input)
    state.out.print("held output:")
    _print_json(item.output)


@review_app.command("approve")
def review_approve(
    task_ids: Annotated[list[int], typer.Argument(help="Held task ids.")],
    edit: Annotated[
        str | None,
        typer.Option(
            "--edit", help="The corrected output: JSON or @file (validated against the contract)."
        ),
    ] = None,
    comment: Annotated[str, typer.Option(help="Recorded with the decision.")] = "",
    who: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve held outputs: each goes to its workflow's sink in the transaction that marks
    the task done. With --edit (one task), the edited output is validated first.

    Example: turing review approve 17 18 --as alice
    Example: turing review approve 17 --edit @fixed.json --comment "dropped a duplicate skill"
    """
    if edit is not None and len(task_ids) != 1:
        raise UsageProblem("--edit applies to one task at a time")
    edited: dict[str, Any] | None = _read_input(edit) if edit is not None else None
    ops = _ops(who)
    try:
        result = _decide(task_ids, lambda task_id: ops.approve(task_id, edited, comment))
    finally:
        _close(ops)
    _say("approved", result, as_json)


@review_app.command("reject")
def review_reject(
    task_ids: Annotated[list[int], typer.Argument(help="Held task ids.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded; sent on --reask).")],
    reask: Annotated[
        bool,
        typer.Option("--reask", help="Ask the model again with the reason as the comment."),
    ] = False,
    who: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject held outputs: the task fails with the reason, or (--reask) goes back to the
    model with the held answer and the reason as a reviewer's comment.

    Example: turing review reject 17 --reason "skills are from another posting" --reask
    """
    ops = _ops(who)
    try:
        result = _decide(task_ids, lambda task_id: ops.reject(task_id, reason, reask=reask))
    finally:
        _close(ops)
    _say("sent back to the model" if reask else "rejected", result, as_json)


# ---------------------------------------------------------------------- tasks
@app.command()
def cancel(
    task_ids: Annotated[list[int] | None, typer.Argument(help="Task ids.")] = None,
    reason: Annotated[str, typer.Option(help="Recorded with the cancel.")] = "",
    workflow: WorkflowOpt = None,
    status: StatusOpt = None,
    subject: SubjectOpt = None,
    who: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel waiting tasks (pending, waiting for a retry, or held for review): they fail
    as cancelled. A running task finishes first. Instead of ids, a filter selects every
    matching waiting task (--status pending or review; both by default).

    Example: turing cancel 17 18 --reason "duplicate postings"
    Example: turing cancel --workflow job_skills --status pending --reason "source replaced"
    """
    ops = _ops(who)
    try:
        ids = _chosen(ops, task_ids, workflow, status or ["pending", "review"], None, subject)
        result = ops.cancel(ids, reason)
    finally:
        _close(ops)
    _say("cancelled", result, as_json)


@app.command()
def requeue(
    task_ids: Annotated[
        list[int] | None, typer.Argument(help="Task ids (succeeded or failed).")
    ] = None,
    input_: Annotated[
        str | None,
        typer.Option("--input", help="Run on this input (JSON or @file) instead of the source's."),
    ] = None,
    workflow: WorkflowOpt = None,
    status: StatusOpt = None,
    reason_kind: ReasonOpt = None,
    subject: SubjectOpt = None,
    who: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run finished tasks again, each on its subject's current input read from the source
    (or on --input, validated first). A succeeded task's sink writes again. Instead of ids,
    a filter selects every matching finished task (--status failed by default).

    Example: turing requeue 17 --as alice
    Example: turing requeue --workflow job_skills --reason-kind output_invalid
    """
    data = _read_input(input_) if input_ is not None else None
    ops = _ops(who)
    try:
        ids = _chosen(ops, task_ids, workflow, status or ["failed"], reason_kind, subject)
        if data is not None and len(ids) != 1:
            raise UsageProblem("--input applies to one task at a time")
        result = ops.requeue(ids, data)
    finally:
        _close(ops)
    _say("requeued", result, as_json)


# ---------------------------------------------------------------------- workflows
@app.command()
def pause(
    workflow: Annotated[str, typer.Argument(help="Workflow name or alias.")],
    reason: Annotated[str, typer.Option(help="Shown to others (e.g. prompt under revision).")] = "",
    who: AsOpt = None,
) -> None:
    """Pause a workflow: no worker claims its tasks until it is resumed (running tasks
    finish; discovery still enqueues).

    Example: turing pause job_skills --reason "prompt under revision"
    """
    ops = _ops(who)
    try:
        name = ops.orch.registry.get(workflow).name
        done = ops.pause(name, reason)
    finally:
        _close(ops)
    state.out.print(f"{name} paused" if done else f"{name} was paused already")


@app.command()
def resume(
    workflow: Annotated[str, typer.Argument(help="Workflow name or alias.")],
    who: AsOpt = None,
) -> None:
    """Resume a paused workflow: workers claim its tasks again.

    Example: turing resume job_skills
    """
    ops = _ops(who)
    try:
        name = ops.orch.registry.get(workflow).name
        done = ops.resume(name)
    finally:
        _close(ops)
    state.out.print(f"{name} resumed" if done else f"{name} was not paused")


@app.command()
def audit(
    task_id: Annotated[int | None, typer.Option("--task", help="Only this task.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """What people did (review decisions, cancels, requeues, pauses), newest first.

    Example: turing audit --task 17
    """
    ops = _ops("reader")
    try:
        rows = ops.actions(task_id=task_id, limit=limit)
    finally:
        _close(ops)
    if as_json:
        _print_json([{**r, "detail": json.loads(r["detail"])} for r in rows])
        return
    if not rows:
        state.out.print("no actions recorded.")
        return
    table = Table("at (UTC)", "who", "action", "workflow", "task", "detail", title="audit")
    for r in rows:
        table.add_row(_when(r["at"]), escape(r["who"]), r["action"], r["workflow"] or "",
                      str(r["task_id"] or ""), escape(r["detail"]))  # fmt: skip
    state.out.print(table)
