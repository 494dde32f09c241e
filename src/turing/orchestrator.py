"""The orchestrator: discover pending work, process it, chain workflows, keep the registry.

    orch = Orchestrator.from_config()          # turing.toml -> project, store, executor
    orch.discover_pending_tasks()              # per workflow: pending count, samples, time
    orch.process_pending_tasks(max_tasks=10)   # discover, claim, execute, sink, report
    orch.chain_workflows([("job_skills", posting), ("match_candidates", {"k": 5})])

A thin facade: processing is the `Processor`'s (claim, execute, complete) inside a
`ProcessingSession` (leases, limiter keep-alive, shared hosts), both in `turing.queue`.
Collaborators are built first and passed in; nothing here changes another object's fields.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turing._json import canonical
from turing.actors.affinity import HostSchedulers
from turing.cache import StoreCache
from turing.compat import problems as compat_problems
from turing.contracts import Contract
from turing.errors import TuringError
from turing.executor import Executor
from turing.observe import Observer, with_tracing
from turing.project import ActorServices, Project
from turing.queue.processor import OnResult, Processor
from turing.queue.report import BatchLimits, Discovery, Report, WorkflowTally
from turing.queue.session import ProcessingSession
from turing.registry import Registry
from turing.result import RunResult
from turing.sources import input_of, subject_of
from turing.store.store import Store, SyncChange, open_store
from turing.workflow import Workflow

__all__ = [
    "DEFAULT_LEASE_S",
    "BatchLimits",
    "ChainError",
    "ChainReport",
    "Discovery",
    "OnResult",
    "Orchestrator",
    "Report",
    "RetrySummary",
    "WorkflowTally",
    "default_worker_id",
]

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 60.0  # short: a heartbeat keeps it; a killed process's tasks come back soon

if TYPE_CHECKING:  # planning imports the orchestrator: only for annotations here
    from turing.batch.runner import Batcher
    from turing.planning import Plan, PlanLimits, PlanReport


@dataclass
class ChainReport:
    results: list[RunResult] = field(default_factory=list)
    status: str = "succeeded"
    stopped_at: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def output(self) -> Any:
        return self.results[-1].output if self.results and self.ok else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stopped_at": self.stopped_at,
            "output": self.output,
            "steps": [r.as_dict() for r in self.results],
        }


@dataclass
class RetrySummary:
    """What `retry_failed` did: tasks requeued (of which `refreshed` got a new input from
    the source) and subjects dropped because the source no longer returns them."""

    requeued: int = 0
    refreshed: int = 0
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "refreshed": self.refreshed, "dropped": self.dropped}


def default_worker_id() -> str:
    """host:pid:random, unique per process and orchestrator."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ChainError(TuringError):
    """The chain does not type-check; nothing ran."""

    exit_code = 2


class Orchestrator:
    def __init__(
        self,
        registry: Registry,
        executor: Executor,
        store: Store | None,
        *,
        worker_id: str | None = None,
        concurrency: int = 8,
        lease_s: float = DEFAULT_LEASE_S,
        heartbeat_s: float | None = None,
        max_rounds: int = 20,
        batch_limits: BatchLimits | None = None,
        limiter: Any = None,
        shared_hosts: Any = None,
        completion_patience_s: float | None = None,
        observer: Observer | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("the lease must be positive")
        # told of completed tasks and reclaims (metrics); by default the executor's
        self.observer = observer or executor.observer
        self.registry = registry
        self.executor = executor
        self._store = store
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = max(1, concurrency)
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s  # lease heartbeats; None: a third of lease_s
        self.max_rounds = max_rounds
        self.batch_limits = batch_limits or BatchLimits()
        self.limiter = limiter  # shared limits: its slots are kept alive while we process
        self.shared_hosts = shared_hosts  # HostSchedulers with hosts shared through the db
        self._processor: Processor | None = None
        self._batcher: Batcher | None = None
        if store is not None:
            self._processor = Processor(
                registry,
                executor,
                store,
                owner=self.worker_id,
                concurrency=self.concurrency,
                lease_s=lease_s,
                batch_limits=self.batch_limits,
                completion_patience_s=completion_patience_s,
                observer=self.observer,
            )

    @classmethod
    def from_project(
        cls, project: Project, *, use_cache: bool = True, **kwargs: Any
    ) -> Orchestrator:
        """Open the project's database, build what its actors share (response cache,
        shared limiter, model-host coordination) and hand them to a new executor.
        `observer=` (metrics, say) is combined with the tracing `[observability]` asks for."""
        store = open_store(project.config.database_url())
        orch_id = kwargs.get("worker_id") or default_worker_id()
        kwargs["worker_id"] = orch_id
        limiter = None
        if project.limits.keys():  # turing.toml's and the workflows' own
            from turing.limits import Limiter

            limiter = Limiter(store.db, holder=orch_id)
        shared = any(p.shared_host for p in project.config.providers.values())
        hosts = HostSchedulers(store.db if shared else None, orch_id)
        budgets = None
        if project.config.limits.budget:  # [limits.budget]: shared through the database
            from turing.limits.spending import PeriodBudgets

            budgets = PeriodBudgets(store.db, project.config.limits.budgets(), holder=orch_id)
        services = ActorServices(
            StoreCache(store) if use_cache else None, limiter, hosts, budgets=budgets
        )
        kwargs.setdefault("limiter", limiter)
        kwargs.setdefault("shared_hosts", hosts)
        limits = project.config.limits
        kwargs.setdefault("batch_limits", BatchLimits(limits.batch_tokens, limits.batch_cost))
        observer = with_tracing(kwargs.get("observer"), project.config.observability)
        observer.watch(store, services.breakers)
        kwargs["observer"] = observer
        return cls(project.registry, project.executor(services, observer), store, **kwargs)

    @classmethod
    def from_config(cls, path: Path | str | None = None, **kwargs: Any) -> Orchestrator:
        return cls.from_project(Project.load(path), **kwargs)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise TuringError("this orchestrator has no database (store) configured")
        return self._store

    @property
    def has_store(self) -> bool:
        return self._store is not None

    @property
    def processor(self) -> Processor:
        """Claims, executes and completes this orchestrator's tasks (needs a store)."""
        if self._processor is None:
            raise TuringError("this orchestrator has no database (store) configured")
        return self._processor

    @property
    def batcher(self) -> Batcher:
        """Provider batches of this orchestrator's workflows (`turing.batch`): the
        workflows whose LLM step's actor has `batch` on go through it, never claimed
        synchronously."""
        if self._batcher is None:
            from turing.batch.runner import Batcher

            self._batcher = Batcher(
                self.registry, self.executor, self.store, self.processor,
                owner=self.worker_id, lease_s=self.lease_s,
            )  # fmt: skip
        return self._batcher

    async def _unbatched(
        self, selected: list[Workflow], report: Report, on_result: OnResult | None
    ) -> list[Workflow]:
        """Submit and poll the provider batches of `selected` (when due), each ingested
        task added to `report`; the workflows left for synchronous processing."""
        batched = self.batcher.batched()
        if not batched:
            return selected

        def ingested(task: Any, result: RunResult, outcome: str) -> None:
            report.add(result, outcome)
            if on_result is not None:
                on_result(task, result, outcome)

        names = [w.name for w in selected if w.name in batched]
        done = await self.batcher.tick(names, on_result=ingested)
        for batch_id, n in done.submitted.items():
            log.info("batch %d: %d task(s) submitted", batch_id, n)
        return [w for w in selected if w.name not in batched]

    def session(self, *, heartbeat_s: float | None = None) -> ProcessingSession:
        """A processing session for this orchestrator's owner id: open it (`async with`)
        around processing so claimed tasks keep their leases and shared limits stay alive."""
        return ProcessingSession(
            self.store,
            self.worker_id,
            lease_s=self.lease_s,
            heartbeat_s=heartbeat_s if heartbeat_s is not None else self.heartbeat_s,
            limiter=self.limiter,
            shared_hosts=self.shared_hosts,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def find_workflow(self, text: str) -> Workflow | None:
        """The best match for a request (alias, name or free text), or None."""
        try:
            return self.registry.get(text)
        except TuringError:
            matches = self.registry.find(text, 1)
            return matches[0].workflow if matches else None

    def _selected(self, workflows: Sequence[str] | None) -> list[Workflow]:
        chosen = [self.registry.get(w) for w in workflows] if workflows else list(self.registry)
        return chosen

    # ------------------------------------------------------------------ discovery
    def discover_pending_tasks(
        self,
        workflows: Sequence[str] | None = None,
        *,
        enqueue: bool = True,
        reprocess: bool = False,
        samples: int = 5,
    ) -> list[Discovery]:
        """Per workflow with a source: how many items are pending; enqueue them (idempotent)."""
        found = []
        for wf in self._selected(workflows):
            if wf.source is None:
                continue
            d = Discovery(wf.name, priority=wf.source.priority or wf.priority)
            started = time.perf_counter()
            key = wf.source.key or wf.subject_key
            assert key is not None
            try:
                with self.store.db.read() as tx:
                    d.count = wf.source.count(tx)
                    sample = wf.source.rows(tx, samples)
                d.sample_keys = [subject_of(r, key) for r in sample]
                d.query_ms = (time.perf_counter() - started) * 1000
                if enqueue and d.count:
                    fields = wf.input.fields
                    for rows in wf.source.stream(self.store.db):
                        items = [(subject_of(r, key), input_of(r, fields)) for r in rows]
                        d.enqueued += self.store.enqueue(
                            wf.name, wf.version, items, priority=d.priority, reprocess=reprocess
                        )
            except Exception as exc:
                d.error = f"source of {wf.name!r} failed: {type(exc).__name__}: {exc}"
                d.query_ms = (time.perf_counter() - started) * 1000
            found.append(d)
        return found

    # ----------------------------------------------------------------- processing
    def process_pending_tasks(
        self,
        max_tasks: int | None = None,
        dry_run: bool = False,
        workflows: Sequence[str] | None = None,
        *,
        discover: bool = True,
        on_result: OnResult | None = None,
        on_discovered: Callable[[list[Discovery]], None] | None = None,
    ) -> Report:
        """Discover, claim, execute, complete; return a report. Dry run changes nothing."""
        return asyncio.run(
            self.aprocess(
                max_tasks,
                dry_run,
                workflows,
                discover=discover,
                on_result=on_result,
                on_discovered=on_discovered,
            )
        )

    async def aprocess(
        self,
        max_tasks: int | None = None,
        dry_run: bool = False,
        workflows: Sequence[str] | None = None,
        *,
        discover: bool = True,
        on_result: OnResult | None = None,
        on_discovered: Callable[[list[Discovery]], None] | None = None,
        limits: BatchLimits | None = None,
        session: ProcessingSession | None = None,
    ) -> Report:
        """`process_pending_tasks` for callers in an event loop. Pass `session` to process
        inside one the caller holds (the worker holds one for its life); else one is opened
        for this call and closed on every exit path. `limits` replaces the orchestrator's
        batch limits for this call."""
        run = functools.partial(
            self._aprocess,
            max_tasks,
            dry_run,
            workflows,
            discover=discover,
            on_result=on_result,
            on_discovered=on_discovered,
            limits=limits,
        )
        if session is not None or self._store is None:
            return await run()
        async with self.session():
            return await run()

    async def _aprocess(
        self,
        max_tasks: int | None,
        dry_run: bool,
        workflows: Sequence[str] | None,
        *,
        discover: bool,
        on_result: OnResult | None,
        on_discovered: Callable[[list[Discovery]], None] | None,
        limits: BatchLimits | None,
    ) -> Report:
        started = time.perf_counter()
        report = Report(dry_run=dry_run)
        selected = self._selected(workflows)
        names = [w.name for w in selected]
        if dry_run:
            report.discovered = await asyncio.to_thread(
                self.discover_pending_tasks, names, enqueue=False
            )
            if on_discovered is not None:
                await asyncio.to_thread(on_discovered, report.discovered)
            await self._dry_run(selected, max_tasks, report, on_result, limits)
        else:
            # Rounds: a workflow's source may depend on another's sink (matches need skills),
            # so discover again after each round that did work, until nothing is left.
            for _ in range(self.max_rounds):
                if discover:
                    found = await asyncio.to_thread(self.discover_pending_tasks, names)
                    report.merge_discovered(found)
                    if on_discovered is not None:  # it may query (the CLI's progress total)
                        await asyncio.to_thread(on_discovered, found)
                budget = None if max_tasks is None else max_tasks - report.processed
                if budget is not None and budget <= 0:
                    break
                before = report.processed
                refill = None
                if discover:

                    async def refill() -> int:
                        found = await asyncio.to_thread(self.discover_pending_tasks, names)
                        report.merge_discovered(found)
                        if on_discovered is not None:
                            await asyncio.to_thread(on_discovered, found)
                        return sum(d.enqueued for d in found)

                sync = await self._unbatched(selected, report, on_result)  # turing.batch
                if not sync:  # every selected workflow goes through batches
                    break
                await self.processor.drain(
                    sync, budget, report, on_result, limits=limits, refill=refill
                )
                if report.processed == before or not discover or report.stopped:
                    break
        report.duration_s = time.perf_counter() - started
        return report

    async def _dry_run(
        self,
        selected: list[Workflow],
        max_tasks: int | None,
        report: Report,
        on_result: OnResult | None,
        limits: BatchLimits | None = None,
    ) -> None:
        """Run what a real run would: the queue's pending tasks plus source rows that have no
        task yet. Sinks run in a transaction that is rolled back; nothing is recorded."""
        jobs = await asyncio.to_thread(self._dry_jobs, selected, max_tasks)
        batch_limits = limits or self.batch_limits
        sem = asyncio.Semaphore(self.concurrency)

        async def one(wf: Workflow, subject: str, data: dict[str, Any]) -> None:
            async with sem:
                stop = batch_limits.exceeded(report)
                if stop:
                    report.stopped = stop
                    return
                result, outcome = await self.processor.dry_execute(wf, subject, data)
            report.add(result, outcome)
            if on_result is not None:
                on_result(None, result, outcome)

        await asyncio.gather(*(one(*job) for job in jobs))

    def _dry_jobs(
        self, selected: list[Workflow], max_tasks: int | None
    ) -> list[tuple[Workflow, str, dict[str, Any]]]:
        """What a dry run would process (database reads: called off the event loop)."""
        budget = max_tasks if max_tasks is not None else 10**12
        jobs: list[tuple[Workflow, str, dict[str, Any]]] = []
        for wf in selected:
            if budget <= 0:
                break
            pending, known = self.store.preview(wf.name, budget)
            jobs += [(wf, t.subject, t.input) for t in pending]
            budget -= len(pending)
            if wf.source is None or budget <= 0:
                continue
            key = wf.source.key or wf.subject_key
            assert key is not None
            with self.store.db.read() as tx:
                rows = wf.source.rows(tx)
            for r in rows:
                subject = subject_of(r, key)
                if subject not in known and budget > 0:
                    jobs.append((wf, subject, input_of(r, wf.input.fields)))
                    budget -= 1
        return jobs

    # ------------------------------------------------------------ direct execution
    def execute_workflow(
        self, name: str, inputs: Mapping[str, Any], *, dry_run: bool = False, record: bool = True
    ) -> RunResult:
        wf = self.registry.get(name)
        result = self.executor.run_sync(wf, inputs, dry_run=dry_run)
        if record and not dry_run and self._store is not None:
            self._store.record_run(result, self.worker_id, data=inputs)
        return result

    def check_chain(self, steps: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Type-check a chain against the contracts; an empty list means it can run."""
        out: list[str] = []
        previous: Workflow | None = None
        for index, (name, given) in enumerate(steps):
            wf = self.registry.get(name)
            where = f"step {index + 1} ({wf.name})"
            fields = wf.input.fields
            for key, value in given.items():
                if key in fields:
                    for v in Contract(fields[key]).violations(value):
                        out.append(f"{where}: input {key}{v.path[1:]}: {v.message}")
            produced_props: dict[str, Any] = dict(previous.output.fields) if previous else {}
            produced_required = previous.output.required if previous else frozenset()
            for req in wf.input.required:
                if req in given:
                    continue
                if req not in produced_props:
                    src = f"{previous.name} does not produce it" if previous else "it is not given"
                    out.append(f"{where}: required input {req!r} is missing ({src})")
                elif req not in produced_required:
                    assert previous is not None
                    out.append(
                        f"{where}: required input {req!r} is only optionally produced by "
                        f"{previous.name}; give it explicitly"
                    )
            for key, sub in fields.items():
                if key in produced_props and key not in given and previous is not None:
                    for p in compat_problems(produced_props[key], sub, f"$.{key}"):
                        out.append(f"{where}: {previous.name} output -> {wf.name} input: {p}")
            previous = wf
        return out

    def chain_workflows(
        self, steps: Sequence[tuple[str, Mapping[str, Any]]], *, dry_run: bool = False
    ) -> ChainReport:
        """Run workflows in order, each output merged into the next input; stop at a failure.

        Each workflow runs once on the input given, as `execute_workflow` does: a chain
        writes no sinks, ignores source filters (no source is read) and records its runs in
        history with no subject, so the queue still counts those rows as pending. To process
        rows and write results, use `process_pending_tasks` or a plan."""
        if not steps:
            raise ChainError("a chain needs at least one workflow")
        found = self.check_chain(steps)
        if found:
            raise ChainError(
                "the chain does not type-check:\n" + "\n".join(f"  - {p}" for p in found)
            )
        report = ChainReport()
        carried: dict[str, Any] = {}
        for name, given in steps:
            wf = self.registry.get(name)
            fields = wf.input.fields
            merged = {k: v for k, v in carried.items() if not fields or k in fields}
            merged.update(given)
            result = self.execute_workflow(name, merged, dry_run=dry_run)
            report.results.append(result)
            if not result.ok:
                report.status = "failed"
                report.stopped_at = wf.name
                break
            carried = dict(result.output) if isinstance(result.output, dict) else {}
        return report

    # ------------------------------------------------------------------ planning
    def plan(
        self,
        goal: str,
        *,
        model: str | None = None,
        today: datetime.date | None = None,
        limits: PlanLimits | None = None,
    ) -> Plan:
        """A validated plan for `goal`: from the offline planner, or from actor `model`."""
        from turing.planning import Catalog, LLMPlanner, OfflinePlanner

        catalog = Catalog.from_registry(self.registry)
        if model is None:
            return OfflinePlanner(catalog, limits).plan(goal, today)
        return LLMPlanner(self.executor, model, catalog, limits).plan(goal, today)

    def execute_plan(
        self,
        plan: Plan,
        *,
        dry_run: bool = False,
        limits: PlanLimits | None = None,
        on_event: Callable[[str, Any], None] | None = None,
    ) -> PlanReport:
        """Run a plan (checked again first): steps as their dependencies finish."""
        from turing.planning import Catalog, PlanRunner, validate

        plan = validate(plan, Catalog.from_registry(self.registry), limits)
        return PlanRunner(self, limits).run(plan, dry_run=dry_run, on_event=on_event)

    def plan_and_execute(
        self,
        goal: str,
        dry_run: bool = False,
        *,
        model: str | None = None,
        today: datetime.date | None = None,
        limits: PlanLimits | None = None,
    ) -> PlanReport:
        """Plan `goal`, run the plan, report per step (see `turing.planning`)."""
        from turing.planning import PlanRunner

        plan = self.plan(goal, model=model, today=today, limits=limits)  # validated
        return PlanRunner(self, limits).run(plan, dry_run=dry_run)

    # ------------------------------------------------------------------ retries
    def retry_failed(
        self, workflows: Sequence[str] | None = None, *, task_id: int | None = None
    ) -> RetrySummary:
        """Requeue failed tasks (all of `workflows`, or one task) with each subject's
        **current** input read from its workflow's source: a row fixed since (or a column
        renamed) is what the retry runs on. A subject the source no longer returns has
        nothing left to do: its task is dropped from the queue (its runs stay in history).
        A workflow without a source is requeued with the input it had."""
        summary = RetrySummary()
        for task in self.store.retryable_failed(workflows, task_id):
            wf = self.registry.get(task.workflow)
            data = self.current_input(wf, task.subject, task.input)
            if data is None:
                if self.store.drop_failed(task.id):
                    summary.dropped.append(f"{task.workflow}/{task.subject}")
                continue
            if data != task.input:
                summary.refreshed += 1
            if self.store.requeue_failed(task.id, data):
                summary.requeued += 1
        return summary

    def current_input(
        self, wf: Workflow, subject: str, stored: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """A subject's input as its workflow's source gives it now (None: the source no
        longer returns it); `stored` for a workflow without a source."""
        if wf.source is None:
            return stored
        key = wf.source.key or wf.subject_key
        assert key is not None
        with self.store.db.read() as tx:
            row = wf.source.row_for(tx, key, subject)
        return None if row is None else input_of(row, wf.input.fields)

    # ------------------------------------------------------------------ registry
    def sync_contracts(self) -> list[SyncChange]:
        return [
            self.store.sync_workflow(wf.describe(), self.executor.fingerprint(wf))
            for wf in self.registry
        ]

    def diff_contracts(self) -> list[dict[str, Any]]:
        """Drift between code and database: one entry per workflow that differs."""
        stored = {r["name"]: r for r in self.store.registry()}
        drift: list[dict[str, Any]] = []
        for wf in self.registry:
            fp = self.executor.fingerprint(wf)
            row = stored.pop(wf.name, None)
            if row is None:
                drift.append({"workflow": wf.name, "change": "not in database"})
                continue
            current = wf.describe()
            if row["fingerprint"] == fp and row["definition"] == canonical(current):
                continue
            old = json.loads(row["definition"])
            changed = [k for k in current if canonical(old.get(k)) != canonical(current[k])]
            if row["fingerprint"] != fp and "fingerprint" not in changed:
                changed.append("fingerprint")  # e.g. an actor now resolves to another model
            drift.append({"workflow": wf.name, "change": "differs", "fields": changed})
        for name in stored:
            drift.append({"workflow": name, "change": "only in database"})
        return drift
