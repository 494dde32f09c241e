"""Long-running and history commands: worker, stats, prune."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from turing._net import masked_url
from turing.cli._shared import JsonOpt, WorkflowOpt, _names, _orchestrator
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json
from turing.cli.orchestrate import print_report
from turing.limits.spending import BudgetState, PeriodBudgets
from turing.observe.metrics import Metrics, MetricsServer
from turing.orchestrator import Orchestrator
from turing.schedules import Schedule, last_ticks, schedules_from_config, when
from turing.stats import (
    MIN_SAMPLES,
    Percentiles,
    Stats,
    TimeoutAdvice,
    collect_stats,
    parse_point,
    prune,
    timeout_advice,
)
from turing.store.batches import Batches
from turing.store.store import open_store
from turing.worker import Worker, WorkerSummary


def _log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    state.err.print(f"[dim]{stamp}[/] {escape(message)}", highlight=False)


def _startup(worker: Worker, orch: Orchestrator, url: str, metrics: str | None = None) -> None:
    err = state.err
    err.print(f"[bold]turing worker[/] {escape(worker.worker_id)}")
    err.print(f"  database     {escape(masked_url(url))}")
    processed = (
        "every workflow"
        if worker.continuous is None
        else ", ".join(worker.continuous) or "none between ticks"
    )
    err.print(f"  processes    {escape(processed)}")
    err.print(
        f"  concurrency  {orch.concurrency}; lease {worker.lease_s:g}s "
        f"(heartbeat every {worker.heartbeat_s:g}s); grace {worker.grace_s:g}s; "
        f"idle {worker.idle_s:g}s"
    )
    if not worker.schedules:
        err.print("  schedules    none (discovery only by `turing discover` or your code)")
    else:
        try:
            fired = last_ticks(orch.store)
        except Exception:
            fired = {}
        now = time.time()
        for i, s in enumerate(worker.schedules):
            label = "  schedules    " if i == 0 else "               "
            last = fired.get(s.name)
            seen = f"; last fired {when(last['tick_at'], s.timezone)}" if last else ""
            err.print(
                f"{label}{escape(s.name)}: {escape(s.describe())}; "
                f"next {when(s.next_tick(now), s.timezone)}{escape(seen)}"
            )
    if metrics is not None:
        err.print(f"  metrics      {escape(metrics)}")
    err.print("  stop with Ctrl-C or SIGTERM (twice: exit at once)")


def _summary(summary: WorkerSummary) -> None:
    out = state.out
    if summary.report.processed:
        print_report(summary.report)
    ticks = len(summary.ticks)
    out.print(
        f"worker {escape(summary.worker_id)} ran {summary.duration_s:.1f}s: "
        f"{summary.report.processed} task(s) processed, {ticks} tick(s) fired "
        f"({summary.enqueued} task(s) enqueued), {summary.released} released at stop"
        + (" (grace period ran out)" if summary.forced else "")
    )
    if summary.stop_reason:
        out.print(f"stopped: {escape(summary.stop_reason)}")


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Tasks in flight at once.")
    ] = 8,
    workflow: WorkflowOpt = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", help="Seconds in-flight tasks get to finish on stop before release."
        ),
    ] = 30.0,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            help="Lease seconds: a dead worker's tasks are reclaimed this long after its "
            "last heartbeat (one every third of it).",
        ),
    ] = 120.0,
    idle: Annotated[
        float, typer.Option("--idle", help="Seconds to wait before looking again when idle.")
    ] = 1.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics while the worker runs "
            "(needs turing\\[metrics]; 0: any free port, printed at start).",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option("--metrics-host", help="Address the metrics endpoint listens on."),
    ] = "127.0.0.1",
    as_json: JsonOpt = False,
) -> None:
    r"""Run until stopped: fire schedules, claim and process queued work, heartbeat leases.

    Schedules come from \[schedules.NAME] in turing.toml (cron = "*/5 * * * *"); a tick fires
    once however many workers run. SIGINT/SIGTERM: stop claiming, let in-flight tasks
    finish within --grace, release the rest; a second signal exits at once.

    Example: turing worker --concurrency 16 --workflow job_skills --grace 60 --metrics-port 9464
    """
    if concurrency < 1:
        raise UsageProblem("--concurrency must be at least 1")
    if lease <= 0:
        raise UsageProblem("--lease must be positive")
    if grace < 0 or idle <= 0:
        raise UsageProblem("--grace must be at least 0 and --idle positive")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise UsageProblem(f"--metrics-port {metrics_port}: a port is 0 to 65535")
    project = state.project()
    schedules: list[Schedule] = schedules_from_config(project.config)
    metrics = Metrics() if metrics_port is not None else None  # before: it counts from start
    orch = _orchestrator(concurrency, lease_s=lease, observer=metrics)
    server: MetricsServer | None = None
    try:
        if metrics is not None and metrics_port is not None:
            server = _serve(metrics, metrics_port, metrics_host)
        w = Worker(
            orch,
            schedules=schedules,
            workflows=_names(orch, workflow),
            grace_s=grace,
            idle_s=idle,
            log=_log,
        )
        url = f"http://{metrics_host}:{server.port}/metrics" if server is not None else None
        _startup(w, orch, project.config.database_url(), url)
        summary = w.run(install_signals=True)
    finally:
        if server is not None:
            server.close()
        orch.close()
    if as_json:
        _print_json(summary.as_dict())
    else:
        _summary(summary)


def _serve(metrics: Metrics, port: int, host: str) -> MetricsServer:
    try:
        return metrics.serve(port, host)
    except OSError as exc:
        raise UsageProblem(
            f"--metrics-port {port} --metrics-host {host}: cannot listen ({exc.strerror or exc})"
        ) from None


# -------------------------------------------------------------------------- stats
def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _pct_cells(p: Percentiles | None) -> list[str]:
    if p is None:
        return ["0", "", "", "", ""]
    return [str(p.n), _ms(p.p50), _ms(p.p95), _ms(p.p99), _ms(p.max)]


def _print_stats(stats: Stats, label: str) -> None:
    out = state.out
    out.print(
        f"[bold]history[/] since {when(stats.since)} ({escape(label)}) to {when(stats.until)}: "
        f"{stats.runs:,} run(s), {stats.tasks:,} task(s) finished, "
        f"{stats.per_minute:.2f} tasks/min"
        + (f" ({stats.per_minute_active:.2f}/min while active)" if stats.tasks else "")
    )
    if not stats.runs:
        out.print("no runs in this window")
        return
    out.print(
        "runs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.by_status.items()))
    )
    if stats.failures:
        out.print(
            "failed by reason: " + ", ".join(f"{k} {v}" for k, v in stats.failures.most_common())
        )
    table = Table(
        "workflow", "runs", "ok", "failed", "p50 ms", "p95 ms", "p99 ms", "tokens", "cost",
        title="runs per workflow (duration)",
    )  # fmt: skip
    for name, wf in sorted(stats.per_workflow.items()):
        p = wf.duration
        table.add_row(
            name,
            str(wf.runs),
            str(wf.by_status.get("succeeded", 0)),
            str(wf.by_status.get("failed", 0)),
            *(_pct_cells(p)[1:4] if p else ["", "", ""]),
            f"{wf.input_tokens + wf.output_tokens:,}",
            f"{wf.cost:.4f}",
        )
    out.print(table)
    if stats.steps:
        table = Table(
            "workflow", "step", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms",
            title="model call latency per step (uncached)",
        )  # fmt: skip
        for (wf_name, step), p in sorted(stats.steps.items()):
            table.add_row(wf_name, step, *_pct_cells(p))
        out.print(table)
        table = Table(
            "actor", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms",
            title="model call latency per actor (uncached)",
        )  # fmt: skip
        for actor, p in sorted(stats.actors.items()):
            table.add_row(escape(actor), *_pct_cells(p))
        out.print(table)
    if stats.quality:
        table = Table(
            "workflow", "actor", "fp", "answers", "1st valid", "re-asked", "repaired",
            "check failures", "grades", "thrown away", title="answer quality (per fingerprint)",
        )  # fmt: skip
        for (wf_name, actor, fp), q in sorted(stats.quality.items()):
            checks = ", ".join(f"{k} {v}" for k, v in q.check_failures.most_common(3))
            table.add_row(
                wf_name,
                escape(actor),
                fp[:8],
                str(q.answers),
                f"{q.rate(q.first_valid, q.answers):.0%}",
                f"{q.rate(q.reasked, q.answers):.0%}",
                f"{q.rate(q.repaired_runs, q.runs):.0%}",
                escape(checks) or "-",
                " ".join(f"{k:g}:{v}" for k, v in sorted(q.grades.items())) or "-",
                f"{q.thrown_calls} calls, {q.thrown_tokens:,} tok, {q.thrown_cost:.4f}",
            )
        out.print(table)
    hit = f" ({stats.cache_hit_rate:.1%} from the cache)" if stats.cached else ""
    out.print(
        f"model calls {stats.calls:,}{hit}, re-asks {stats.reasks:,}, "
        f"retries {stats.retries:,}, repairs {stats.repairs:,}"
        + (
            " (" + ", ".join(f"{k} {v}" for k, v in stats.repairs_by_kind.most_common()) + ")"
            if stats.repairs_by_kind
            else ""
        )
    )
    out.print(
        f"tokens {stats.input_tokens:,} in + {stats.output_tokens:,} out, cost {stats.cost:.4f}"
    )


def _actor_timeout(ref: str) -> float | None:
    """An actor's own `timeout` setting (it overrides the step's), if it has one."""
    settings = getattr(state.project().resolve_actor(ref), "settings", None)
    value = getattr(settings, "timeout", None)
    return float(value) if value is not None else None


@app.command()
def stats(
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Window start: a duration back (24h, 7d, 90m) or an ISO date/time."
        ),
    ] = "24h",
    workflow: WorkflowOpt = None,
    timeouts: Annotated[
        bool,
        typer.Option(
            "--timeouts", help="Recommend per-step timeouts from the measured p99 instead."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Throughput, latency p50/p95/p99 per step and actor, failures, retries, repairs, tokens
    and cost over a window of history; and each [limits.budget] in its current period
    (spent, held by calls in flight, limit).

    Calls answered through provider batches are shown apart too (cost at the batch rate).

    Example: turing stats --since 7d --workflow job_skills   (or: turing stats --timeouts)
    """
    now = time.time()
    try:
        start = parse_point(since, now)
    except ValueError as exc:
        raise UsageProblem(f"--since: {exc}") from None
    orch = _orchestrator()
    try:
        names = _history_names(orch, workflow)
        numbers = collect_stats(orch.store, since=start, until=now, workflows=names)
        advice = timeout_advice(numbers, orch.registry, _actor_timeout) if timeouts else []
        budgets = _budget_states(orch)
        batched = Batches(orch.store).costs(start, now, names)
    finally:
        orch.close()
    if timeouts:
        if as_json:
            _print_json(
                {
                    "since": numbers.since,
                    "until": numbers.until,
                    "min_samples": MIN_SAMPLES,
                    "timeouts": [a.as_dict() for a in advice],
                }
            )
            return
        _print_timeouts(advice, numbers, since)
        return
    if as_json:
        _print_json(
            numbers.as_dict() | {"budgets": [b.as_dict() for b in budgets], "batch_calls": batched}
        )
    else:
        _print_stats(numbers, since)
        _print_budgets(budgets)
        _print_batch_calls(batched)


def _print_batch_calls(batched: list[dict[str, Any]]) -> None:
    """Calls answered through provider batches, apart: their cost is at the batch rate
    (and they are in the totals above too)."""
    if not batched:
        return
    table = Table(
        "actor", "batches", "calls", "input tokens", "output tokens", "cost",
        title="answered through provider batches (batch rate; included above)",
    )  # fmt: skip
    for b in batched:
        table.add_row(
            escape(b["actor"]), str(b["batches"]), str(b["calls"]), f"{b['input_tokens']:,}",
            f"{b['output_tokens']:,}", f"{float(b['cost'] or 0):.6f}",
        )  # fmt: skip
    state.out.print(table)


def _budget_states(orch: Orchestrator) -> list[BudgetState]:
    """Each configured period budget in its current period, read from the database."""
    configured = state.project().config.limits.budgets()
    if not configured:
        return []
    return PeriodBudgets(orch.store.db, configured, holder="stats").states()


def _print_budgets(budgets: list[BudgetState]) -> None:
    if not budgets:
        return
    table = Table("budget", "limit", "period (UTC)", "spent", "held", "left", title="budgets")
    for b in budgets:
        usd = b.budget.unit == "USD"
        spent, held, left = (
            f"{v:.4f}" if usd else f"{v:,.0f}"
            for v in (b.spent, b.held, max(0.0, b.budget.amount - b.spent - b.held))
        )
        full = b.spent + b.held >= b.budget.amount
        table.add_row(
            escape(b.budget.scope),
            b.budget.spec,
            f"{when(b.period_start)} to {when(b.period_end)}",
            spent,
            held,
            left + (" [yellow](full: work waits)[/]" if full else ""),
        )
    state.out.print(table)


def _history_names(orch: Orchestrator, workflows: list[str] | None) -> list[str] | None:
    """Registry names for known workflows; other names as given (history may outlive code)."""
    if not workflows:
        return None
    out = []
    for w in workflows:
        try:
            out.append(orch.registry.get(w).name)
        except Exception:
            out.append(w)
    return out


def _print_timeouts(advice: list[TimeoutAdvice], numbers: Stats, label: str) -> None:
    out = state.out
    if not advice:
        out.print("no LLM steps and no model calls in this window: nothing to recommend")
        return
    table = Table(
        "workflow", "step", "samples", "p99", "configured", "recommended", "",
        title=f"step timeouts from history since {when(numbers.since)} ({label})",
    )  # fmt: skip
    few = 0
    for a in advice:
        note = ""
        if a.samples == 0:
            note = "no samples"
        elif a.few_samples:
            note = "[yellow]few samples[/]"
            few += 1
        if a.configured_s is not None and a.recommended_s is not None:
            if a.recommended_s > a.configured_s:
                note += ("; " if note else "") + "raise"
            elif a.recommended_s < a.configured_s / 2:
                note += ("; " if note else "") + "could lower"
        configured = (
            f"{a.configured_s:g}s" + (f" ({a.configured_by})" if a.configured_by != "step" else "")
            if a.configured_s is not None
            else "?"
        )
        table.add_row(
            a.workflow,
            a.step,
            str(a.samples),
            f"{a.p99_ms / 1000:.2f}s" if a.p99_ms is not None else "",
            escape(configured),
            f"{a.recommended_s:g}s" if a.recommended_s is not None else "",
            note,
        )
    out.print(table)
    out.print(
        "recommended = max(2 x p99, p99 + 5s), rounded up; from uncached calls without "
        "provider retries (a step timeout bounds each try)"
    )
    if few:
        state.err.print(
            f"[yellow]warning:[/] {few} step(s) have fewer than {MIN_SAMPLES} samples: "
            "their p99 is close to their maximum; widen --since or wait for more history"
        )


# -------------------------------------------------------------------------- prune
@app.command("prune")
def prune_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Delete history older than this: 30d, 12h, or an ISO date."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    tasks: Annotated[
        bool,
        typer.Option(
            "--tasks",
            help="Also delete finished (succeeded/failed) tasks older than that. Their subjects "
            "are then enqueued again if a source still returns them.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete runs (with their calls and repairs) and schedule ticks older than a cutoff.

    Tasks are kept unless --tasks; pending and running tasks are never deleted.

    Example: turing prune --older-than 30d --dry-run
    """
    try:
        cutoff = parse_point(older_than)
    except ValueError as exc:
        raise UsageProblem(f"--older-than: {exc}") from None
    store = open_store(state.project().config.database_url())
    try:
        counts = prune(store, cutoff, tasks=tasks, dry_run=dry_run)
    finally:
        store.close()
    if as_json:
        _print_json(counts.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    state.out.print(
        f"{verb} history before {when(cutoff)}: {counts.runs:,} run(s), {counts.calls:,} "
        f"call(s), {counts.repairs:,} repair(s), {counts.ticks:,} schedule tick(s)"
        + (f", {counts.tasks:,} finished task(s)" if tasks else "")
    )
    if counts.tasks_kept:
        state.out.print(
            f"kept {counts.tasks_kept:,} finished task(s) older than that (--tasks deletes them)"
        )
    if dry_run:
        state.out.print("[bold yellow]DRY RUN[/]: nothing was deleted")
