"""The orchestrator: discover pending work, process it, chain workflows, keep the registry.

    orch = Orchestrator.from_config()          # turing.toml -> project, store, executor
    orch.discover_pending_tasks()              # per workflow: pending count, samples, time
    orch.process_pending_tasks(max_tasks=10)   # discover, claim, execute, sink, report
    orch.chain_workflows([("job_skills", posting), ("match_candidates", {"k": 5})])

Processing keeps up to `concurrency` tasks in flight; each finished task is completed in
its own transaction, guarded by status and lease owner, with the sink inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turing._json import canonical
from turing.cache import StoreCache
from turing.compat import problems as compat_problems
from turing.contracts import Contract
from turing.errors import TuringError
from turing.executor import Executor
from turing.leases import LeaseHeartbeat, Log
from turing.project import Project
from turing.registry import Registry
from turing.result import RunResult
from turing.sources import input_of, subject_of
from turing.store.store import Completion, Store, SyncChange, TaskRow, open_store
from turing.workflow import Workflow

if TYPE_CHECKING:  # planning imports the orchestrator: only for annotations here
    from turing.planning import Plan, PlanLimits, PlanReport


@dataclass
class Discovery:
    workflow: str
    count: int = 0
    enqueued: int = 0
    sample_keys: list[str] = field(default_factory=list)
    priority: int = 0
    query_ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "count": self.count,
            "enqueued": self.enqueued,
            "sample_keys": self.sample_keys,
            "priority": self.priority,
            "query_ms": round(self.query_ms, 3),
            "error": self.error,
        }


@dataclass
class WorkflowTally:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    repaired: int = 0
    lost: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    reasks: int = 0
    retries: int = 0
    cached: int = 0
    retrying: int = 0


@dataclass(frozen=True)
class BatchLimits:
    """Most tokens or cost one `process_pending_tasks` call may spend before it stops claiming."""

    tokens: int | None = None
    cost: float | None = None

    def exceeded(self, report: Report) -> str | None:
        tokens = report.total("input_tokens") + report.total("output_tokens")
        if self.tokens is not None and tokens >= self.tokens:
            return (
                f"batch token limit reached ({tokens} >= {self.tokens}); stopped claiming new work"
            )
        cost = report.total_cost()
        if self.cost is not None and cost >= self.cost:
            return (
                f"batch cost limit reached ({cost:.6f} >= {self.cost:g}); stopped claiming new work"
            )
        return None


@dataclass
class Report:
    """What one `process_pending_tasks` call did."""

    dry_run: bool = False
    discovered: list[Discovery] = field(default_factory=list)
    per_workflow: dict[str, WorkflowTally] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    repairs: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    stopped: str | None = None

    def total(self, attr: str) -> int:
        return sum(int(getattr(t, attr)) for t in self.per_workflow.values())

    def total_cost(self) -> float:
        return sum(t.cost for t in self.per_workflow.values())

    _total = total

    @property
    def processed(self) -> int:
        return self._total("processed")

    @property
    def succeeded(self) -> int:
        return self._total("succeeded")

    @property
    def failed(self) -> int:
        return self._total("failed")

    @property
    def repaired(self) -> int:
        return self._total("repaired")

    def add(self, result: RunResult, outcome: str) -> None:
        tally = self.per_workflow.setdefault(result.workflow, WorkflowTally())
        tally.processed += 1
        usage = result.usage
        tally.input_tokens += usage.input_tokens
        tally.output_tokens += usage.output_tokens
        tally.cost += usage.cost
        tally.calls += usage.calls
        tally.reasks += result.reasks
        tally.retries += usage.retries
        tally.cached += usage.cached
        if result.repairs:
            tally.repaired += 1
            self.repairs.update(r.kind for _, r in result.repairs)
        if outcome == "succeeded":
            tally.succeeded += 1
        elif outcome == "lost":
            tally.lost += 1
        elif outcome == "retry":
            tally.retrying += 1
            self.failures[f"{_reason(result)} (retry scheduled)"] += 1
        else:
            tally.failed += 1
            self.failures[outcome if outcome != "failed" else _reason(result)] += 1

    def merge_discovered(self, found: list[Discovery]) -> None:
        """Fold another discovery round in: counts at their highest, enqueued summed."""
        known = {d.workflow: d for d in self.discovered}
        for d in found:
            if d.workflow not in known:
                self.discovered.append(d)
                known[d.workflow] = d
                continue
            mine = known[d.workflow]
            mine.enqueued += d.enqueued
            mine.query_ms += d.query_ms
            mine.error = mine.error or d.error
            if d.count > mine.count:
                mine.count, mine.sample_keys = d.count, d.sample_keys

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "repaired": self.repaired,
            "failures_by_reason": dict(self.failures),
            "calls": self.total("calls"),
            "reasks": self.total("reasks"),
            "retries": self.total("retries"),
            "cached": self.total("cached"),
            "input_tokens": self.total("input_tokens"),
            "output_tokens": self.total("output_tokens"),
            "cost": round(self.total_cost(), 8),
            "repairs_by_kind": dict(self.repairs),
            "per_workflow": {k: vars(v) for k, v in sorted(self.per_workflow.items())},
            "discovered": [d.as_dict() for d in self.discovered],
            "duration_s": round(self.duration_s, 3),
            "stopped": self.stopped,
        }


def _reason(result: RunResult) -> str:
    return result.errors[0].kind if result.errors else "unknown"


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


def default_worker_id() -> str:
    """host:pid:random, unique per process and orchestrator."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ChainError(TuringError):
    """The chain does not type-check; nothing ran."""

    exit_code = 2


OnResult = Callable[[TaskRow | None, RunResult, str], None]


class Orchestrator:
    def __init__(
        self,
        registry: Registry,
        executor: Executor,
        store: Store | None,
        *,
        worker_id: str | None = None,
        concurrency: int = 8,
        lease_s: float = 600.0,
        max_rounds: int = 20,
        batch_limits: BatchLimits | None = None,
        limiter: Any = None,
        shared_hosts: Any = None,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self._store = store
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = max(1, concurrency)
        self.lease_s = lease_s
        self.max_rounds = max_rounds
        self.batch_limits = batch_limits or BatchLimits()
        self._rng = random.Random()
        self.limiter = limiter  # shared limits: its slots are kept alive while we process
        self.shared_hosts = shared_hosts  # HostSchedulers with hosts shared through the db
        self.heartbeat_s: float | None = None  # lease heartbeats; None: a third of lease_s
        self._leases: LeaseHeartbeat | None = None
        self._lease_users = 0
        self._leases_lock = threading.Lock()

    @classmethod
    def from_project(cls, project: Project, **kwargs: Any) -> Orchestrator:
        store = open_store(project.config.database_url())
        project.cache = StoreCache(store)
        orch_id = kwargs.get("worker_id") or default_worker_id()
        kwargs["worker_id"] = orch_id
        if project.limits.keys():  # turing.toml's and the workflows' own
            from turing.limits import Limiter

            project.limiter = Limiter(store.db, holder=orch_id)
            kwargs.setdefault("limiter", project.limiter)
        if any(p.shared_host for p in project.config.providers.values()):
            project.hosts.share(store.db, holder=orch_id)  # one model phase per shared host
            kwargs.setdefault("shared_hosts", project.hosts)
        limits = project.config.limits
        kwargs.setdefault("batch_limits", BatchLimits(limits.batch_tokens, limits.batch_cost))
        return cls(project.registry, project.executor(), store, **kwargs)

    @classmethod
    def from_config(cls, path: Path | str | None = None, **kwargs: Any) -> Orchestrator:
        return cls.from_project(Project.load(path), **kwargs)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise TuringError("this orchestrator has no database (store) configured")
        return self._store

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

    # ------------------------------------------------------------------ leases
    def hold_leases(self, every_s: float | None = None, log: Log | None = None) -> LeaseHeartbeat:
        """Start extending the lease of every task this orchestrator holds (`worker_id`),
        every `every_s` (default `heartbeat_s`, else a third of `lease_s`), from a thread, so
        a task running longer than its lease is not reclaimed while this process lives.
        Nested holds share the first one's thread; pair each with `drop_leases()`."""
        with self._leases_lock:
            if self._leases is None:
                self._leases = LeaseHeartbeat(
                    self.store, self.worker_id, self.lease_s, every_s or self.heartbeat_s, log
                )
                self._leases.start()
            self._lease_users += 1
            return self._leases

    def drop_leases(self) -> None:
        """End one `hold_leases()`; the last one stops the thread (waits for a beat in
        progress, so call it off the event loop)."""
        with self._leases_lock:
            self._lease_users -= 1
            beat = self._leases if self._lease_users <= 0 else None
            if beat is not None:
                self._leases, self._lease_users = None, 0
        if beat is not None:
            beat.stop()

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
    ) -> Report:
        beats = asyncio.create_task(self.limiter.keep_alive()) if self.limiter else None
        leases = not dry_run and self._store is not None  # what we claim stays ours
        if leases:
            self.hold_leases()
        try:
            return await self._aprocess(
                max_tasks,
                dry_run,
                workflows,
                discover=discover,
                on_result=on_result,
                on_discovered=on_discovered,
            )
        finally:
            if leases:
                await asyncio.to_thread(self.drop_leases)
            if beats is not None:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
                await asyncio.to_thread(self.limiter.release_all)
            if self.shared_hosts is not None:
                await asyncio.to_thread(self.shared_hosts.release_all)

    async def _aprocess(
        self,
        max_tasks: int | None,
        dry_run: bool,
        workflows: Sequence[str] | None,
        *,
        discover: bool,
        on_result: OnResult | None,
        on_discovered: Callable[[list[Discovery]], None] | None,
    ) -> Report:
        started = time.perf_counter()
        report = Report(dry_run=dry_run)
        selected = self._selected(workflows)
        names = [w.name for w in selected]
        if dry_run:
            report.discovered = self.discover_pending_tasks(names, enqueue=False)
            if on_discovered is not None:
                on_discovered(report.discovered)
            await self._dry_run(selected, max_tasks, report, on_result)
        else:
            # Rounds: a workflow's source may depend on another's sink (matches need skills),
            # so discover again after each round that did work, until nothing is left.
            for _ in range(self.max_rounds):
                if discover:
                    found = self.discover_pending_tasks(names)
                    report.merge_discovered(found)
                    if on_discovered is not None:
                        on_discovered(found)
                budget = None if max_tasks is None else max_tasks - report.processed
                if budget is not None and budget <= 0:
                    break
                before = report.processed
                await self._drain(selected, budget, report, on_result)
                if report.processed == before or not discover or report.stopped:
                    break
        report.duration_s = time.perf_counter() - started
        return report

    async def _drain(
        self,
        selected: list[Workflow],
        max_tasks: int | None,
        report: Report,
        on_result: OnResult | None,
        *,
        task_ids: Sequence[int] | None = None,
    ) -> None:
        """Keep `concurrency` tasks in flight until nothing is left (or a limit stops us);
        `task_ids` restricts the claims to those tasks (a plan step's).

        Claims run in the background while calls are in flight. Without batch limits they
        take more tasks than there are free slots (`prefetch`) and a slot that finishes goes
        on with the next claimed task by itself, without waiting for a claim's round trip
        or for this loop; with batch limits (and in `turing worker`, whose stop is one) they
        only fill free slots and the limit is checked before anything starts. Claimed tasks
        hold the same lease (the heartbeat extends them too); any that never started (a
        limit stopped us, or the drain was abandoned) are released back to pending, attempt
        not counted. Finished tasks are group-committed in the background, one commit at a
        time, each taking everything that finished meanwhile."""
        names = [w.name for w in selected]
        remaining = max_tasks if max_tasks is not None else -1  # claims still allowed
        buffer: deque[TaskRow] = deque()  # claimed, not started yet
        finished: list[Completion] = []  # not committed yet
        slots: set[asyncio.Task[None]] = set()  # each runs one task at a time
        claiming: asyncio.Task[list[TaskRow]] | None = None
        flushing: asyncio.Task[None] | None = None
        asked = 0  # tasks the claim under way asked for
        dry = False  # the last claim came back short: wait for a task to finish first
        wake = asyncio.Event()  # anything happened: a task finished, a claim or commit ended
        bounded = self.batch_limits != BatchLimits()  # any batch limit is set
        chain = not bounded  # a slot goes on with the next buffered task by itself
        # With a batch limit (the worker's stop is one) claims only fill free slots: what is
        # claimed starts at once, after the limit was checked, and nothing sits claimed
        # while a stop waits for the running tasks.
        target = self.concurrency + (0 if bounded else self.prefetch)

        def poke(_: object = None) -> None:
            wake.set()

        async def slot(task: TaskRow) -> None:
            while True:
                finished.append(await self._one(task))
                wake.set()
                if not (chain and buffer):
                    return
                task = buffer.popleft()

        async def settle() -> None:
            """Spending is counted at commit: commit everything before deciding to spend."""
            nonlocal flushing
            while flushing is not None or finished:
                if flushing is None:
                    flushing = asyncio.create_task(self._flush(finished[:], report, on_result))
                    finished.clear()
                task, flushing = flushing, None
                await task

        try:
            while True:
                wake.clear()
                for ended in [t for t in slots if t.done()]:
                    slots.discard(ended)
                    ended.result()  # a bug in a slot ends the drain (its tasks time out)
                if flushing is not None and flushing.done():
                    committed = flushing
                    flushing = None
                    committed.result()
                if claiming is not None and claiming.done():
                    claimed, claiming = claiming.result(), None
                    dry = len(claimed) < asked
                    if remaining >= 0:
                        remaining -= len(claimed)
                    buffer.extend(claimed)
                if finished:
                    dry = False  # work moved on: the queue may have more (retries, new tasks)
                if buffer and len(slots) < self.concurrency:
                    if bounded:
                        await settle()
                        stop = self.batch_limits.exceeded(report)
                        if stop:
                            report.stopped = stop
                            remaining = 0
                            await self._release_claimed(buffer)
                    while buffer and len(slots) < self.concurrency:
                        started = asyncio.create_task(slot(buffer.popleft()))
                        started.add_done_callback(poke)
                        slots.add(started)
                if finished and flushing is None:
                    flushing = asyncio.create_task(self._flush(finished[:], report, on_result))
                    flushing.add_done_callback(poke)
                    finished.clear()
                want = target - len(slots) - len(buffer)
                if remaining >= 0:
                    want = min(want, remaining)
                # Claim when the buffer is down to half the prefetch (or a slot is idle): a
                # few larger claims rather than one per finished task.
                low = len(buffer) <= self.prefetch // 2 or len(slots) < self.concurrency
                if claiming is None and not dry and want > 0 and low and not report.stopped:
                    if bounded and len(slots) < self.concurrency:  # would start at once: check
                        await settle()
                        stop = self.batch_limits.exceeded(report)
                        if stop:
                            report.stopped = stop
                            remaining = want = 0
                    if want > 0:
                        asked = want
                        claiming = asyncio.create_task(self._claim(names, asked, task_ids))
                        claiming.add_done_callback(poke)
                if not (slots or buffer or finished or flushing or claiming):
                    break
                await wake.wait()
        finally:
            # Only when the drain was abandoned (an error, a cancellation): hand back what
            # was claimed but never started, now or once the claim in progress returns.
            if claiming is not None:
                claiming.add_done_callback(self._release_when_claimed)
            if buffer:
                unstarted = list(buffer)
                buffer.clear()  # slots still running must not take them
                self._release_now(unstarted)

    @property
    def prefetch(self) -> int:
        """Tasks claimed beyond the free slots: half the concurrency, claimed again when half
        of those are used, covers the slots that finish while a claim is under way (a claim
        waits for the commit in progress on SQLite) with claims of several tasks each; the
        buffer holds each task for a fraction of a call, under the heartbeat's lease."""
        return max(2, self.concurrency // 2)

    async def _claim(
        self, names: list[str], n: int, task_ids: Sequence[int] | None = None
    ) -> list[TaskRow]:
        return await asyncio.to_thread(
            self.store.claim,
            self.worker_id,
            n,
            workflows=names,
            lease_s=self.lease_s,
            task_ids=task_ids,
        )

    async def _release_claimed(self, buffer: deque[TaskRow]) -> None:
        tasks = list(buffer)
        buffer.clear()
        if tasks:
            await asyncio.to_thread(self._release_now, tasks)

    def _release_now(self, tasks: list[TaskRow]) -> None:
        for task in tasks:
            with contextlib.suppress(Exception):  # else its lease expires and it is reclaimed
                self.store.release(task, self.worker_id)

    def _release_when_claimed(self, claim: asyncio.Task[list[TaskRow]]) -> None:
        if not claim.cancelled() and claim.exception() is None:
            self._release_now(claim.result())

    async def _one(self, task: TaskRow) -> Completion:
        wf = self.registry.get(task.workflow)
        result = await self.executor.run(wf, task.input)
        sink, output = wf.sink, result.output

        def write(tx: Any) -> None:
            if sink is not None and isinstance(output, dict):
                sink.write(
                    tx, output, {"subject": task.subject, "id": task.id, "input": task.input}
                )

        retry_at = None
        if not result.ok:
            delay = wf.retry.delay(task.attempts, result.errors[0], self._rng)
            retry_at = None if delay is None else time.time() + delay
        return Completion(task, result, write, retry_at)

    async def _flush(
        self, done: list[Completion], report: Report, on_result: OnResult | None
    ) -> None:
        """Group commit of finished tasks, off the event loop so calls in flight go on."""
        try:
            outcomes = await asyncio.to_thread(
                self.store.complete_many, done, self.worker_id, worker=self.worker_id
            )
        except Exception:  # the batch failed as a whole: complete one by one
            outcomes = [self._complete_alone(item) for item in done]
        for item, outcome in zip(done, outcomes, strict=True):
            report.add(item.result, outcome)
            if on_result is not None:
                on_result(item.task, item.result, outcome)

    def _complete_alone(self, item: Completion) -> str:
        try:
            return self.store.complete_many([item], self.worker_id, worker=self.worker_id)[0]
        except Exception as exc:  # the database failed us: fail this task, keep going
            reason = f"completing the task failed: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):  # else the lease expires and it is reclaimed
                self.store.fail(item.task, self.worker_id, reason)
            return "internal"

    async def _dry_run(
        self,
        selected: list[Workflow],
        max_tasks: int | None,
        report: Report,
        on_result: OnResult | None,
    ) -> None:
        """Run what a real run would: the queue's pending tasks plus source rows that have no
        task yet. Sinks run in a transaction that is rolled back; nothing is recorded."""
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
        sem = asyncio.Semaphore(self.concurrency)

        async def one(wf: Workflow, subject: str, data: dict[str, Any]) -> None:
            async with sem:
                stop = self.batch_limits.exceeded(report)
                if stop:
                    report.stopped = stop
                    return
                result, outcome = await self._dry_execute(wf, subject, data)
            report.add(result, outcome)
            if on_result is not None:
                on_result(None, result, outcome)

        await asyncio.gather(*(one(*job) for job in jobs))

    async def _dry_execute(
        self, wf: Workflow, subject: str, data: dict[str, Any]
    ) -> tuple[RunResult, str]:
        """One item as a dry run does it: models called, the sink tried and rolled back."""
        result = await self.executor.run(wf, data, dry_run=True)
        outcome: str = result.status
        if result.ok and wf.sink is not None:
            outcome = await asyncio.to_thread(self._try_sink, wf, result, subject, data)
        return result, outcome

    def _try_sink(self, wf: Workflow, result: RunResult, subject: str, data: dict[str, Any]) -> str:
        assert wf.sink is not None
        try:
            with self.store.db.tx() as tx:
                wf.sink.write(tx, result.output, {"subject": subject, "id": None, "input": data})
                raise _Rollback
        except _Rollback:
            return "succeeded"
        except Exception:
            return "sink"

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
        """Run workflows in order, each output merged into the next input; stop at a failure."""
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


class _Rollback(Exception):
    pass
