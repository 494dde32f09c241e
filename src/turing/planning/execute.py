"""Run a validated plan: each step as soon as its dependencies are done, independent steps in
parallel, `for_each` steps through the task queue.

A `for_each` step reads its workflow's source narrowed by the plan's filters, enqueues those
items (idempotently, as discovery does) and then claims and completes exactly those tasks,
so limits, retries, leases, history, sinks and exactly-once hold as in `turing run`. A task
another worker holds is waited for, a scheduled retry too. A step with any failed task
fails; its dependants are skipped, and the report says which and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import graphlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from turing.executor import Executor
from turing.planning.model import Plan, PlanError, PlanStep
from turing.planning.schema import PlanLimits
from turing.queue.processor import Processor
from turing.queue.report import Report
from turing.queue.report import failure_reason as _reason_of
from turing.queue.session import ProcessingSession
from turing.registry import Registry
from turing.result import RunResult
from turing.sources import input_of, subject_of
from turing.store.plans import PlanStore
from turing.store.states import TaskStatus
from turing.store.store import Store, TaskRow
from turing.workflow import Workflow

log = logging.getLogger(__name__)
OnEvent = Callable[[str, "StepReport"], None]
IN_FLIGHT = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUBMITTED)


class PlanHost(Protocol):
    """What running a plan needs (the `Orchestrator` is one): the registry and executor,
    the store, the processor that claims and completes a step's tasks, and a processing
    session to hold their leases. A protocol, so planning does not import its caller."""

    registry: Registry
    executor: Executor
    worker_id: str
    concurrency: int

    @property
    def store(self) -> Store: ...
    @property
    def has_store(self) -> bool: ...
    @property
    def processor(self) -> Processor: ...
    def session(self, *, heartbeat_s: float | None = None) -> ProcessingSession: ...


@dataclass
class StepReport:
    id: str
    workflow: str
    mode: str  # "for_each" or "once"
    after: list[str] = field(default_factory=list)
    status: str = "waiting"  # waiting, running, succeeded, failed, skipped
    tasks: int = 0  # items in scope (for_each) or 1
    succeeded: int = 0
    failed: int = 0
    already_done: int = 0  # subjects whose task had succeeded before this plan
    previously_failed: int = 0  # subjects whose task had failed before (`turing retry`)
    held: int = 0  # outputs held for a reviewer: not failed, not written yet
    processed: int = 0  # tasks this process ran (others may run some: workers)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    duration_s: float = 0.0
    reason: str | None = None
    failures: Counter[str] = field(default_factory=Counter)
    output: Any = None
    task_ids: list[int] = field(default_factory=list)  # the queue's tasks of this step

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("failures", "task_ids")}
        out["failures"] = dict(self.failures)
        out["duration_s"] = round(self.duration_s, 3)
        out["cost"] = round(self.cost, 8)
        return out


@dataclass
class PlanReport:
    plan: Plan
    dry_run: bool = False
    steps: dict[str, StepReport] = field(default_factory=dict)
    duration_s: float = 0.0
    run_id: int | None = None  # the plan run recorded in the database (not for dry runs)

    @classmethod
    def waiting(cls, plan: Plan, *, dry_run: bool = False) -> PlanReport:
        """A report with every step waiting, before anything ran."""
        report = cls(plan, dry_run=dry_run)
        for step in plan.steps:
            mode = "once" if step.for_each is None else "for_each"
            report.steps[step.id] = StepReport(step.id, step.workflow, mode, step.depends_on())
        return report

    @property
    def ok(self) -> bool:
        return all(s.status == "succeeded" for s in self.steps.values())

    @property
    def status(self) -> str:
        return "succeeded" if self.ok else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "goal": self.plan.goal,
            "planner": self.plan.planner,
            "dry_run": self.dry_run,
            "status": self.status,
            "run_id": self.run_id,
            "duration_s": round(self.duration_s, 3),
            "plan": self.plan.as_dict(),
            "steps": [s.as_dict() for s in self.steps.values()],
        }


class PlanRunner:
    def __init__(
        self,
        orchestrator: PlanHost,
        limits: PlanLimits | None = None,
        *,
        poll_s: float = 0.25,
    ) -> None:
        self.orch = orchestrator
        self.limits = limits or PlanLimits()
        self.poll_s = poll_s

    # ----------------------------------------------------------------- preflight
    def _source_rows(self, step: PlanStep) -> list[dict[str, Any]]:
        """The step's filtered source rows now: at most its cap + 1 (to see an overflow)."""
        assert step.for_each is not None
        wf = self.orch.registry.get(step.workflow)
        assert wf.source is not None
        cap = step.for_each.limit or self.limits.max_fan_out
        with self.orch.store.db.read() as tx:
            return wf.source.select(tx, step.for_each.filters, limit=cap + 1)

    def _too_big(self, step: PlanStep, n: int) -> str | None:
        """Why `n` items are too many for the step (an explicit limit just cuts them)."""
        assert step.for_each is not None
        if step.for_each.limit is not None or n <= self.limits.max_fan_out:
            return None
        return (
            f"{step.id} ({step.workflow}): fans out to more than "
            f"{self.limits.max_fan_out} tasks; narrow its filters or set for_each.limit"
        )

    def fan_out(self, step: PlanStep) -> int:
        """How many items `step` would fan out to now (at most the limit + 1)."""
        return len(self._source_rows(step))

    def check(self, plan: Plan) -> dict[str, int]:
        """Fan-out per `for_each` step as the database stands; PlanError when one is too big.
        (Later steps' sources may grow as earlier ones write; that is checked again then.)"""
        counts: dict[str, int] = {}
        errors = []
        for step in plan.steps:
            if step.for_each is None:
                continue
            counts[step.id] = n = self.fan_out(step)
            if problem := self._too_big(step, n):
                errors.append(problem)
        if errors:
            raise PlanError(errors, plan=plan.as_dict())
        return counts

    # ----------------------------------------------------------------- execution
    def run(
        self, plan: Plan, *, dry_run: bool = False, on_event: OnEvent | None = None
    ) -> PlanReport:
        return asyncio.run(self.arun(plan, dry_run=dry_run, on_event=on_event))

    async def arun(
        self, plan: Plan, *, dry_run: bool = False, on_event: OnEvent | None = None
    ) -> PlanReport:
        started = time.perf_counter()
        report = PlanReport.waiting(plan, dry_run=dry_run)
        await asyncio.to_thread(self.check, plan)
        # the plan's claims keep their leases, shared limits and hosts stay alive and are
        # released on every exit path
        session = self.orch.session() if self.orch.has_store else contextlib.nullcontext()
        recorded = self.orch.has_store and not dry_run
        if recorded:  # what ran, for people (the dashboard draws it from the queue)
            plans = PlanStore(self.orch.store.db)
            args = (plan.goal, plan.as_dict(), self.orch.worker_id)
            report.run_id = await asyncio.to_thread(plans.start, *args)
        status = "interrupted"
        try:
            async with session:
                await self._schedule(plan, report, dry_run, on_event or (lambda _e, _s: None))
            status = report.status
        finally:
            if report.run_id is not None:
                await self._record(plans.finish, report.run_id, status)
        report.duration_s = time.perf_counter() - started
        return report

    async def _record(self, write: Callable[..., None], *args: Any, **kw: Any) -> None:
        """Write the plan run's record; a failure is logged, the plan itself goes on."""
        try:
            await asyncio.to_thread(write, *args, **kw)
        except Exception as exc:
            log.warning("recording plan run failed (%s: %s)", type(exc).__name__, exc)

    async def _save(self, report: PlanReport, mine: StepReport) -> None:
        if report.run_id is None:
            return
        await self._record(
            PlanStore(self.orch.store.db).save_step,
            report.run_id,
            step=mine.id,
            workflow=mine.workflow,
            status=mine.status,
            tasks=mine.tasks,
            task_ids=mine.task_ids,
            reason=mine.reason,
        )

    async def _schedule(
        self, plan: Plan, report: PlanReport, dry_run: bool, on_event: OnEvent
    ) -> None:
        sorter = graphlib.TopologicalSorter({s.id: s.depends_on() for s in plan.steps})
        sorter.prepare()
        running: dict[asyncio.Task[None], str] = {}
        while sorter.is_active():
            for sid in sorter.get_ready():
                step, mine = plan.step(sid), report.steps[sid]
                blocked = [d for d in mine.after if report.steps[d].status != "succeeded"]
                if blocked:
                    mine.status = "skipped"
                    mine.reason = "; ".join(
                        f"{d} {report.steps[d].status}"
                        + (f": {report.steps[d].reason}" if report.steps[d].reason else "")
                        for d in blocked
                    )
                    on_event("finished", mine)
                    await self._save(report, mine)
                    sorter.done(sid)
                    continue
                running[asyncio.create_task(self._step(step, report, dry_run, on_event))] = sid
            if not running:
                continue
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                sorter.done(running.pop(task))

    async def _step(
        self, step: PlanStep, report: PlanReport, dry_run: bool, on_event: OnEvent
    ) -> None:
        mine = report.steps[step.id]
        mine.status = "running"
        on_event("started", mine)
        await self._save(report, mine)
        began = time.perf_counter()
        try:
            if step.for_each is None:
                await self._once(step, report, dry_run)
            elif dry_run:
                await self._for_each_dry(step, mine, on_event)
            else:
                await self._for_each(step, report, on_event)
            if mine.status == "running":
                mine.status = "failed" if mine.failed else "succeeded"
                if mine.failed and not mine.reason:
                    top = ", ".join(f"{k} x{n}" for k, n in mine.failures.most_common(3))
                    mine.reason = f"{mine.failed} of {mine.tasks} tasks failed ({top})"
        except Exception as exc:  # a source query or the database failed: this step fails
            mine.status = "failed"
            mine.reason = f"{type(exc).__name__}: {exc}"
        mine.duration_s = time.perf_counter() - began
        on_event("finished", mine)
        await self._save(report, mine)

    # ------------------------------------------------------------------ once
    async def _once(self, step: PlanStep, report: PlanReport, dry_run: bool) -> None:
        mine = report.steps[step.id]
        wf = self.orch.registry.get(step.workflow)
        data = step.literals()
        for key, ref in step.refs().items():
            data[key] = ref.resolve(report.steps[ref.step].output)
        mine.tasks = 1
        result = await self.orch.executor.run(wf, data, dry_run=dry_run)
        if not dry_run and self.orch.has_store:
            await asyncio.to_thread(
                self.orch.store.record_run, result, self.orch.worker_id, data=data
            )
        mine.processed = 1
        _add_usage(mine, result)
        if result.ok:
            mine.succeeded, mine.output = 1, result.output
        else:
            mine.failed = 1
            first = result.errors[0] if result.errors else None
            mine.reason = f"{first.kind}: {first.message}" if first else "failed"
            mine.failures[first.kind if first else "unknown"] += 1

    # -------------------------------------------------------------- for_each
    def _items(self, step: PlanStep, wf: Workflow) -> list[tuple[str, dict[str, Any]]]:
        assert step.for_each is not None and wf.source is not None
        rows = self._source_rows(step)
        if problem := self._too_big(step, len(rows)):
            raise PlanError([problem])
        rows = rows[: step.for_each.limit or self.limits.max_fan_out]
        key = wf.source.key or wf.subject_key
        assert key is not None
        literals = step.literals()
        return [(subject_of(r, key), input_of(r, wf.input.fields) | literals) for r in rows]

    async def _for_each(self, step: PlanStep, report: PlanReport, on_event: OnEvent) -> None:
        mine = report.steps[step.id]
        wf = self.orch.registry.get(step.workflow)
        items = await asyncio.to_thread(self._items, step, wf)
        mine.tasks = len(items)
        on_event("progress", mine)
        if not items:
            return
        store = self.orch.store
        priority = (wf.source.priority if wf.source else 0) or wf.priority
        await asyncio.to_thread(store.enqueue, wf.name, wf.version, items, priority=priority)
        subjects = [s for s, _ in items]
        rows = await asyncio.to_thread(store.tasks_for_subjects, wf.name, subjects)
        newest = {r["subject"]: r for r in rows}  # id order: the newest task per subject wins
        ours: list[int] = []
        for row in newest.values():
            if row["status"] == "succeeded":
                mine.already_done += 1
            elif row["status"] == "failed":
                mine.previously_failed += 1
            else:
                ours.append(int(row["id"]))
        mine.task_ids = [int(r["id"]) for r in newest.values()]
        on_event("progress", mine)
        await self._save(report, mine)

        def on_result(_task: TaskRow | None, result: RunResult, outcome: str) -> None:
            mine.processed += 1
            _add_usage(mine, result)
            on_event("progress", mine)

        open_ids = ours
        while open_ids:
            tally = Report()
            await self.orch.processor.drain(
                list(self.orch.registry), None, tally, on_result, task_ids=open_ids
            )
            states = await asyncio.to_thread(store.task_states, open_ids)
            # in flight: claimable, claimed, or inside a provider batch another worker sent
            waiting = [r for r in states if r["status"] in IN_FLIGHT]
            if not waiting:
                for r in states:
                    if r["status"] == TaskStatus.SUCCEEDED:
                        mine.succeeded += 1
                    elif r["status"] == TaskStatus.REVIEW:  # a person decides: not a failure
                        mine.held += 1
                    else:
                        mine.failed += 1
                        mine.failures[_reason(r["last_error"])] += 1
                break
            open_ids = [int(r["id"]) for r in states]  # keep all: counted once at the end
            now = time.time()
            due = [r["not_before"] for r in waiting if r["status"] == "pending" and r["not_before"]]
            delay = min((float(d) - now for d in due), default=self.poll_s)
            await asyncio.sleep(min(max(delay, self.poll_s), 5.0))

    async def _for_each_dry(self, step: PlanStep, mine: StepReport, on_event: OnEvent) -> None:
        """What the step would do, changing nothing: runs in dry-run mode, sinks rolled back.
        Steps whose source depends on an earlier step's results see them as they are now."""
        wf = self.orch.registry.get(step.workflow)
        items = await asyncio.to_thread(self._items, step, wf)
        mine.tasks = len(items)
        if self.orch.has_store and items:  # as a real run: done subjects are not run
            rows = await asyncio.to_thread(
                self.orch.store.tasks_for_subjects, wf.name, [s for s, _ in items]
            )
            newest = {r["subject"]: r["status"] for r in rows}
            mine.already_done = sum(1 for st in newest.values() if st == "succeeded")
            mine.previously_failed = sum(1 for st in newest.values() if st == "failed")
            items = [(s, d) for s, d in items if newest.get(s) not in ("succeeded", "failed")]
        sem = asyncio.Semaphore(self.orch.concurrency)

        async def one(subject: str, data: dict[str, Any]) -> None:
            async with sem:
                result, outcome = await self.orch.processor.dry_execute(wf, subject, data)
            mine.processed += 1
            _add_usage(mine, result)
            if outcome == "succeeded":
                mine.succeeded += 1
            else:
                mine.failed += 1
                mine.failures[outcome if outcome != "failed" else _reason_of(result)] += 1
            on_event("progress", mine)

        await asyncio.gather(*(one(s, d) for s, d in items))


def _add_usage(mine: StepReport, result: RunResult) -> None:
    mine.input_tokens += result.usage.input_tokens
    mine.output_tokens += result.usage.output_tokens
    mine.cost += result.usage.cost
    mine.calls += result.usage.calls


def _reason(last_error: Any) -> str:
    text = str(last_error or "failed")
    return text.split(":", 1)[0][:60]
