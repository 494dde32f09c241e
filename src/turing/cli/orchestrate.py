"""Commands on the database: run, discover, chain, history, runs show, retry, db, contracts."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from turing.cli._shared import JsonOpt, WorkflowOpt, _names, _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json, _read_input
from turing.orchestrator import DEFAULT_LEASE_S, Discovery, Orchestrator, Report
from turing.result import RunResult
from turing.store.db import connect
from turing.store.migrations import current_version, latest_version, migrate
from turing.store.ops import OpsStore
from turing.store.states import Outcome
from turing.store.store import TaskRow

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
contracts_app = typer.Typer(
    help="Keep the database registry in sync with the code.", no_args_is_help=True
)
runs_app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(contracts_app, name="contracts")
app.add_typer(runs_app, name="runs")

LeaseOpt = Annotated[
    float,
    typer.Option(
        "--lease",
        help="Seconds a claimed task is held without a heartbeat; heartbeats renew it every "
        "third of it, so a killed process's tasks are claimable again within one lease.",
    ),
]


def _discovery_table(found: list[Discovery]) -> Table:
    table = Table("workflow", "pending", "enqueued", "priority", "query ms", "sample keys")
    for d in found:
        keys = ", ".join(d.sample_keys) if not d.error else f"[red]{escape(d.error)}[/]"
        table.add_row(
            d.workflow, str(d.count), str(d.enqueued), str(d.priority), f"{d.query_ms:.1f}", keys
        )
    return table


@app.command()
def discover(
    workflow: WorkflowOpt = None,
    enqueue: Annotated[
        bool, typer.Option("--enqueue/--no-enqueue", help="Add tasks to the queue.")
    ] = True,
    reprocess: Annotated[
        bool,
        typer.Option(
            "--reprocess", help="Re-enqueue subjects finished by an older workflow version."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find pending work per workflow and enqueue it (idempotent: twice never doubles a task).

    Example: turing discover --json
    """
    orch = _orchestrator()
    try:
        found = orch.discover_pending_tasks(
            _names(orch, workflow), enqueue=enqueue, reprocess=reprocess
        )
    finally:
        orch.close()
    if as_json:
        _print_json([d.as_dict() for d in found])
    else:
        state.out.print(_discovery_table(found))
    errors = [d for d in found if d.error]
    if errors:
        for d in errors:
            state.err.print(f"[red]error:[/] {escape(d.error or '')}")
        raise typer.Exit(1)


@app.command()
def run(
    max_tasks: Annotated[
        int | None, typer.Option("--max-tasks", "-n", help="Stop after this many tasks.")
    ] = None,
    workflow: WorkflowOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Run everything, models included; change nothing in the database."
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Tasks in flight at once.")
    ] = 8,
    discover_: Annotated[
        bool, typer.Option("--discover/--no-discover", help="Discover pending work first.")
    ] = True,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not answer from (or fill) the response cache.")
    ] = False,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Stop claiming new work once this much was spent."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens", help="Stop claiming new work once this many tokens were used."
        ),
    ] = None,
    lease: LeaseOpt = DEFAULT_LEASE_S,
    as_json: JsonOpt = False,
) -> None:
    """Discover pending work, process it (claim, execute, validate, sink) and report.

    Claimed tasks are held under a short lease that a heartbeat renews while this process
    lives; if it is killed, its tasks are claimable again once the lease runs out.

    Exit codes: 0 every task succeeded (or nothing to do); 1 some task failed, is waiting
    for a retry or was deferred, or a source failed; 3 stopped early by a budget or an open
    circuit breaker; 2 bad usage.

    Example: turing run --max-tasks 10 --workflow job_skills --max-cost 2.50 --lease 30
    """
    if concurrency < 1:
        raise UsageProblem("--concurrency must be at least 1")
    if lease <= 0:
        raise UsageProblem("--lease must be positive")
    orch = _orchestrator(
        concurrency, no_cache=no_cache, max_tokens=max_tokens, max_cost=max_cost, lease_s=lease
    )
    try:
        names = _names(orch, workflow)
        found = None
        if dry_run:  # what the whole backlog would cost, next to what the sample did
            from turing.cli.cost import backlog_estimate

            found = backlog_estimate(orch, names)
        report = run_with_progress(orch, max_tasks, dry_run, names, discover_, as_json)
        idle = None
        if report.processed == 0 and not report.dry_run:
            idle = nothing_done(orch, names, report)
    finally:
        orch.close()
    code = run_exit_code(report)
    if as_json:
        extra: dict[str, Any] = {"idle": idle} if idle is not None else {}
        if found is not None:
            extra["estimate"] = found.as_dict()
        _print_json(report.as_dict() | extra | {"exit_code": code})
    else:
        print_report(report, idle)
        if found is not None:
            from turing.cli.cost import print_estimate

            print_estimate(found, title="estimate of the whole pending backlog")
    if code:
        raise typer.Exit(code)


EXIT_SOME_FAILED = 1
EXIT_STOPPED = 3


def run_exit_code(report: Report) -> int:
    """0: everything processed succeeded (or there was nothing to do). 3: stopped early by a
    budget (a period budget's work waits for room) or an open circuit breaker (work is
    left). 1: some task did not succeed (failed, scheduled for a retry, deferred by a
    database fault) or a source failed. So cron and CI
    notice a run that did not do its job, even when every task failed transiently."""
    if report.stopped or report.waiting:  # a period budget is full: its work waits
        return EXIT_STOPPED
    unfinished = report.failed + report.total("retrying") + report.deferred
    if unfinished or any(d.error for d in report.discovered):
        return EXIT_SOME_FAILED
    return 0


def run_with_progress(
    orch: Orchestrator,
    max_tasks: int | None,
    dry_run: bool,
    workflows: list[str] | None,
    discover: bool = True,
    quiet: bool = False,
) -> Report:
    """`process_pending_tasks` with a progress bar on stderr (none when `quiet`).

    The bar counts outcomes as the report does (ok, failed, to retry, deferred, lost); after
    it, the first failure of each kind is printed with its reason (the fields an invalid
    input breaks, the sink's exception...), so a run says why without `turing history`."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}"),
        TimeElapsedColumn(),
        console=state.err,
        disable=quiet,
        transient=False,
    )
    tally: dict[str, int] = dict.fromkeys(_PROGRESS_LABELS.values(), 0)
    bar = progress.add_task(
        "dry run" if dry_run else "processing", total=None, tally=_tally_text(tally)
    )
    counts: dict[str, float] = {"total": 0}
    first_failures: dict[str, str] = {}

    def discovered(found: list[Discovery]) -> None:
        if dry_run:
            counts["total"] += sum(d.count for d in found)
        else:
            pending = sum(v.get("pending", 0) for v in orch.store.queue_counts().values())
            counts["total"] = progress.tasks[0].completed + pending
        total = counts["total"] if max_tasks is None else min(counts["total"], max_tasks)
        progress.update(bar, total=total)

    def finished(task: TaskRow | None, result: RunResult, outcome: str) -> None:
        label = _PROGRESS_LABELS.get(outcome, "failed")  # a sink failure fails its task
        tally[label] += 1
        progress.update(bar, advance=1, tally=_tally_text(tally))
        where = f"subject {task.subject}" if task is not None else "a run"
        if outcome == Outcome.SINK:
            first_failures.setdefault("sink", f"{where}: the sink raised (history says why)")
        elif label in ("failed", "to retry") and result.errors:
            error = result.errors[0]
            first_failures.setdefault(error.kind, f"{where}: {error.message}")

    with progress:
        report = orch.process_pending_tasks(
            max_tasks, dry_run, workflows, discover=discover,
            on_result=finished, on_discovered=discovered,
        )  # fmt: skip
    if first_failures and not quiet:
        state.err.print("first failure of each kind (all: turing history --failed):")
        for kind, text in first_failures.items():
            state.err.print(escape(f"  {kind}: {text}"), highlight=False)
    return report


# how the progress bar names each outcome: the words of the report ("2 failed, 1 to retry")
_PROGRESS_LABELS: dict[str, str] = {
    Outcome.SUCCEEDED: "ok",
    Outcome.FAILED: "failed",
    Outcome.SINK: "failed",
    Outcome.RETRY: "to retry",
    Outcome.DEFERRED: "deferred",
    Outcome.REVIEW: "held for review",
    Outcome.LOST: "lost",
}


def _tally_text(tally: dict[str, int]) -> str:
    """ "ok 17 failed 2 to retry 1": ok and failed always, the others once they happen."""
    return " ".join(f"{label} {n}" for label, n in tally.items() if n or label in ("ok", "failed"))


def nothing_done(orch: Orchestrator, names: list[str] | None, report: Report) -> str:
    """Why a run processed nothing, from what the queue actually holds."""
    q = orch.store.queue_overview(names)
    parts = []
    if q.running:
        until = (
            f", leases run out within {q.last_lease_expiry - q.now:.0f}s"
            if (q.last_lease_expiry)
            else ""
        )
        parts.append(f"{q.running} running under a live lease (another process{until})")
    if q.expired:
        parts.append(f"{q.expired} whose lease just ran out (claimable by the next run)")
    if q.waiting_retry:
        wait = f", next in {q.next_retry_at - q.now:.0f}s" if q.next_retry_at else ""
        parts.append(f"{q.waiting_retry} waiting for a retry time{wait}")
    if q.pending:
        parts.append(f"{q.pending} pending")
    if q.failed:
        parts.append(f"{q.failed} failed (turing history --failed; turing retry --failed)")
    if q.review:
        parts.append(f"{q.review} held for review (turing review list)")
    if q.submitted:
        parts.append(f"{q.submitted} inside a provider batch (turing batches list)")
    paused = [r["workflow"] for r in OpsStore(orch.store.db).paused()]
    paused = [w for w in paused if not names or w in names]
    if paused and (q.pending or q.waiting_retry):
        parts.append(f"paused: {', '.join(paused)} (turing resume NAME)")
    broken = [d.workflow for d in report.discovered if d.error]
    if broken:
        parts.append(f"the source of {', '.join(broken)} failed")
    selected = names or [wf.name for wf in orch.registry]
    sourceless = [n for n in selected if orch.registry.get(n).source is None]
    aside = (
        f" ({', '.join(sourceless)}: no source, so only enqueued by hand or by a plan)"
        if sourceless
        else ""
    )
    if not parts:
        return f"nothing pending: all {q.succeeded} task(s) succeeded.{aside}"
    return "nothing processed: " + "; ".join(parts) + f"; {q.succeeded} succeeded.{aside}"


def print_report(report: Report, idle: str | None = None) -> None:
    out = state.out
    if report.dry_run:
        out.print(
            "[bold yellow]DRY RUN[/]: models were called, but nothing was written to the database."
        )
    failed_discovery = [d for d in report.discovered if d.error]
    for d in failed_discovery:
        state.err.print(f"[red]error:[/] {escape(d.error or '')} (nothing enqueued for it)")
    if report.processed == 0 and not report.dry_run:
        out.print(escape(idle or "nothing pending."), highlight=False)
        return
    table = Table("workflow", "tasks", "repaired", "model calls", "tokens", "cost", title="report")
    for name, t in report.per_workflow.items():
        extras = [
            f"{n} {label}"
            for n, label in ((t.reasks, "re-asks"), (t.retries, "retries"), (t.cached, "cached"))
            if n
        ]
        calls = f"{t.calls}" + (f" ({', '.join(extras)})" if extras else "")
        tasks = f"{t.succeeded} ok" + (f", {t.failed} failed" if t.failed else "")
        tasks += f", {t.retrying} to retry" if t.retrying else ""
        tasks += f", {t.deferred} deferred (back to pending)" if t.deferred else ""
        tasks += f", {t.review} held for review" if t.review else ""
        tokens = f"{t.input_tokens + t.output_tokens:,}"
        table.add_row(name, tasks, str(t.repaired), calls, tokens, f"{t.cost:.4f}")
    out.print(table)
    rate = report.processed / report.duration_s if report.duration_s else 0.0
    out.print(
        f"processed {report.processed}: {report.succeeded} succeeded, {report.failed} failed, "
        f"{report.repaired} repaired, in {report.duration_s:.2f}s ({rate:.1f} tasks/s); "
        f"cost {report.total_cost():.4f}"
    )
    if report.review:
        out.print(
            f"{report.review} held for review (their sinks wait for a decision): turing review list"
        )
    if report.failures:
        out.print(
            "failed by reason: " + ", ".join(f"{k} {v}" for k, v in report.failures.most_common())
        )
    if report.repairs:
        out.print(
            "repairs by kind: " + ", ".join(f"{k} {v}" for k, v in report.repairs.most_common())
        )
    if report.stopped:
        out.print(f"[bold yellow]stopped:[/] {escape(report.stopped)}")
    for name, why in sorted(report.waiting.items()):
        out.print(f"[bold yellow]waiting:[/] {escape(name)}: {escape(why)}")


CHAIN_NOTE = (
    "a chain writes no sinks, ignores source filters and records its runs with no subject "
    "(use turing run or turing plan to process rows and write results)"
)


@app.command()
def chain(
    workflows: Annotated[list[str], typer.Argument(help="Workflows in order (names or aliases).")],
    input_: Annotated[
        str, typer.Option("--input", "-i", help="Input of the first workflow: JSON or @file.")
    ],
    step_input: Annotated[
        list[str] | None,
        typer.Option("--with", help="Extra input for a later workflow: NAME=JSON (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Scripts must not write anything.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run workflows in order, each output merged into the next input; type-checked first.

    A chain runs each workflow once on the input given (as turing exec does): it writes no
    sinks, ignores source filters (no source is read) and records its runs with no subject
    (so the queue still counts those rows as pending). To process rows and write results,
    use turing run or a plan (turing plan).

    Example: turing chain job_skills match_candidates --input @posting.json
    --with match_candidates='{"k": 3}'
    """
    extra: dict[str, dict[str, Any]] = {}
    for item in step_input or []:
        name, sep, raw = item.partition("=")
        if not sep:
            raise UsageProblem(f"--with {item!r}: expected NAME=JSON")
        extra[name] = _read_input(raw)
    orch = _orchestrator()
    try:
        names = [orch.registry.get(w).name for w in workflows]
        steps = [(n, _read_input(input_) if i == 0 else {}) for i, n in enumerate(names)]
        steps = [(n, {**given, **extra.get(n, {})}) for n, given in steps]
        report = orch.chain_workflows(steps, dry_run=dry_run)
    finally:
        orch.close()
    if as_json:
        _print_json(report.as_dict() | {"note": CHAIN_NOTE})
    else:
        state.err.print(f"note: {CHAIN_NOTE}", highlight=False)
        for r in report.results:
            mark = "[green]ok[/]" if r.ok else "[red]failed[/]"
            state.err.print(f"{r.workflow} v{r.version}: {mark} ({r.duration_s * 1000:.1f} ms)")
            for e in r.errors:
                state.err.print(escape(f"  ({e.kind}) {e.message}"))
                for v in e.violations:
                    state.err.print(escape(f"    - {v}"))
        if report.ok:
            _print_json(report.output)
        else:
            state.err.print(f"[red]chain stopped at {report.stopped_at}[/]")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def history(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = False,
    workflow: WorkflowOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, newest first.

    Example: turing history --failed --workflow job_skills
    """
    orch = _orchestrator()
    try:
        rows = orch.store.runs(workflows=_names(orch, workflow), failed_only=failed, limit=limit)
    finally:
        orch.close()
    if as_json:
        _print_json(rows)
        return
    state.out.print(_history_table(rows, wide=state.out.width >= _WIDE))


_WIDE = 160  # below this many columns `turing history` shows fewer, truncated columns


def _error_text(kind: str | None, error: str | None) -> str:
    """`kind: text`, the kind said once (rows written before it was left out of the text
    start with it too)."""
    if not error:
        return kind or ""
    if not kind:
        return error
    return f"{kind}: {error.removeprefix(f'{kind}: ')}"


def _history_table(rows: list[dict[str, Any]], *, wide: bool) -> Table:
    """One line per run: every column on a wide terminal; narrower, run, when, workflow,
    subject, status, cost and the error (its contract boilerplate left out), cut with an
    ellipsis rather than wrapped (`--json` and `turing runs show ID` give everything)."""
    # the columns that give way are wrappable (so the table shrinks them first), their
    # cells one line each, cut with an ellipsis
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1 if wide else 0))
    table.add_column("run", no_wrap=True, justify="right")
    if wide:
        table.add_column("task", no_wrap=True, justify="right")
    table.add_column("when", no_wrap=True)
    table.add_column("workflow", min_width=8)
    table.add_column("subject", min_width=7)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("ms", no_wrap=True, justify="right")
    if wide:
        table.add_column("calls", no_wrap=True, justify="right")
        table.add_column("repairs", no_wrap=True, justify="right")
        table.add_column("tokens", no_wrap=True, justify="right")
    table.add_column("cost", no_wrap=True, justify="right")
    table.add_column("error", min_width=12)
    for r in rows:
        when = datetime.fromtimestamp(r["started_at"], UTC) if r["started_at"] else None
        cells: list[str | Text] = [str(r["id"])]
        if wide:
            cells.append(str(r["task_id"] or ""))
        cells.append(when.strftime("%Y-%m-%d %H:%M:%S" if wide else "%m-%d %H:%M") if when else "")
        cells += [_cut(f"{r['workflow']} v{r['version']}"), _cut(str(r["subject"] or ""))]
        cells.append(r["status"])
        if wide:
            cells.append(f"{r['duration_ms']:.0f}")
        if wide:
            calls = str(r["calls"]) + (f" ({r['cached']} cached)" if r["cached"] else "")
            cells += [calls, str(r["repairs"]), str(r["input_tokens"] + r["output_tokens"])]
        cells.append(f"{r['cost']:.4f}")
        cells.append(_cut(_BOILERPLATE.sub("", _error_text(r["error_kind"], r["error"]), 1)))
        table.add_row(*cells)
    return table


# "input_invalid: input breaks contract 'x.input' of workflow 'x' v1: $.text: ..." reads
# "input_invalid: $.text: ..." in the table (the row names the workflow; runs show has all)
_BOILERPLATE = re.compile(
    r"(?<=_invalid: )(?:input|output(?: of step '[^']*')?) (?:still )?breaks contract "
    r"'[^']*'(?: of workflow '[^']*' v\d+)?(?: after \d+ re-ask\(s\))?: "
)


def _cut(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(help="Run id (see turing history).")],
    as_json: JsonOpt = False,
) -> None:
    """One run in full: every attempt with prompt and raw response, repairs, errors.

    Example: turing runs show 42
    """
    orch = _orchestrator()
    try:
        row = orch.store.run(run_id)
    finally:
        orch.close()
    if row is None:
        raise UsageProblem(f"no run with id {run_id}")
    if as_json:
        _print_json(row)
        return
    out = state.out
    out.print(
        f"[bold]run {row['id']}[/] {row['workflow']} v{row['version']} "
        f"subject {row['subject']}: {row['status']}"
    )
    out.print(
        f"fingerprint {row['fingerprint']}  worker {row['worker']}  {row['duration_ms']:.1f} ms"
    )
    out.print(
        f"{row['calls']} call(s), {row['reasks']} re-ask(s), {row['retries']} retries, "
        f"{row['cached']} cached, tokens {row['input_tokens']}+{row['output_tokens']}, "
        f"cost {row['cost']:.6f}"
    )
    if row["error"]:
        error = _error_text(row["error_kind"], row["error"]).removeprefix(f"{row['error_kind']}: ")
        out.print(escape(f"error ({row['error_kind']}): {error}"))
    out.print("[bold]input[/]")
    _print_json(json.loads(row["input"]))
    for call in row["calls_detail"]:
        extra = " (cached)" if call["cached"] else ""
        extra += f", {call['retries']} retries" if call["retries"] else ""
        out.rule(
            f"{call['step']} attempt {call['number']} via {call['actor']}{extra}: "
            f"{call['input_tokens']}+{call['output_tokens']} tokens, {call['latency_ms']:.0f} ms"
        )
        for m in json.loads(call["messages"]):
            out.print(f"[bold]{m['role']}[/]: " + escape(m["content"]))
        out.print("[bold]raw response[/]: " + escape(call["raw"] or "(none)"))
        for v in json.loads(call["violations"]):
            out.print(escape(f"  violation {v['path']}: {v['message']} [rule: {v['rule']}]"))
        if call["error"] and call["error"].startswith("retried "):  # an answer after retries
            out.print(escape(f"  {call['error']}"))
        elif call["error"]:
            out.print(escape(f"  error: {call['error']}"))
    for r in row["repairs_detail"]:
        out.print(
            escape(f"repair [{r['kind']}] {r['step']} {r['path']}: {r['before']} -> {r['after']}")
        )
    if row["output"]:
        out.print("[bold]output[/]")
        _print_json(json.loads(row["output"]))


@app.command()
def retry(
    task_id: Annotated[int | None, typer.Argument(help="Task id to requeue.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Requeue every failed task.")] = False,
    workflow: WorkflowOpt = None,
) -> None:
    """Put failed tasks back in the queue (the next `turing run` processes them).

    Each subject's input is read again from its workflow's source, so a row fixed since is
    what runs; a subject the source no longer returns is dropped from the queue.

    Example: turing retry --failed --workflow job_skills   (or: turing retry 17)
    """
    if (task_id is None) == (not failed):
        raise UsageProblem("give a task id or --failed (not both)")
    orch = _orchestrator()
    try:
        if task_id is not None:
            task = orch.store.task(task_id)
            if task is None:
                raise UsageProblem(f"no task with id {task_id}")
            if task["status"] != "failed":
                raise UsageProblem(f"task {task_id} is {task['status']}, not failed")
            summary = orch.retry_failed(task_id=task_id)
            if not (summary.requeued or summary.dropped):
                raise UsageProblem(
                    f"task {task_id} is not its subject's newest, or the subject has an open task"
                )
        else:
            summary = orch.retry_failed(_names(orch, workflow))
        line = f"{summary.requeued} failed task(s) requeued"
        if summary.refreshed:
            line += f" ({summary.refreshed} with a new input from the source)"
        state.out.print(line)
        if summary.dropped:
            shown = ", ".join(summary.dropped[:10]) + (" ..." if len(summary.dropped) > 10 else "")
            state.out.print(
                f"{len(summary.dropped)} dropped: the source no longer returns them ({shown})"
            )
    finally:
        orch.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create Turing's tables or apply pending migrations (also done automatically).

    Example: turing db upgrade
    """
    db = connect(state.project().config.database_url())
    try:
        before = current_version(db)
        applied = migrate(db)
        latest = latest_version(db.dialect)
        state.out.print(
            f"schema version {before} -> {current_version(db)} (latest {latest}); "
            f"applied: {', '.join(map(str, applied)) or 'nothing'}"
        )
    finally:
        db.close()


@contracts_app.command("sync")
def contracts_sync(as_json: JsonOpt = False) -> None:
    """Write workflows and contracts to the registry; a new revision only when a hash changed.

    Example: turing contracts sync
    """
    orch = _orchestrator()
    try:
        changes = orch.sync_contracts()
    finally:
        orch.close()
    if as_json:
        _print_json([vars(c) for c in changes])
        return
    for c in changes:
        extra = f" (new contract revision: {', '.join(c.contracts)})" if c.contracts else ""
        state.out.print(f"{c.workflow} v{c.version}: {c.action}{extra}")


@contracts_app.command("diff")
def contracts_diff(as_json: JsonOpt = False) -> None:
    """Show drift between code and the database registry; exit 1 if there is any.

    Example: turing contracts diff || turing contracts sync
    """
    orch = _orchestrator()
    try:
        drift = orch.diff_contracts()
    finally:
        orch.close()
    if as_json:
        _print_json(drift)
    elif not drift:
        state.out.print("registry is in sync with the code")
    else:
        for d in drift:
            fields = f": {', '.join(d['fields'])}" if d.get("fields") else ""
            state.out.print(f"{d['workflow']}: {d['change']}{fields}")
    if drift:
        raise typer.Exit(1)


@contracts_app.command("export")
def contracts_export(
    directory: Annotated[Path, typer.Argument(help="Folder to write the JSON Schemas to.")],
) -> None:
    """Write each workflow's input and output JSON Schema to DIR/<workflow>.<role>.schema.json.

    Example: turing contracts export schemas/
    """
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for wf in state.project().registry:
        for role, contract in (("input", wf.input), ("output", wf.output)):
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **contract.schema}
            schema.setdefault("$comment", f"{wf.name} v{wf.version} {role}, hash {contract.hash}")
            path = directory / f"{wf.name}.{role}.schema.json"
            path.write_text(
                json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            count += 1
    state.out.print(f"wrote {count} schema file(s) to {directory} at {time.strftime('%H:%M:%S')}")
