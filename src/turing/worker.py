"""The long-running worker: schedules, continuous processing, heartbeats, graceful stop.

    orch = Orchestrator.from_config(concurrency=8)
    worker = Worker(orch, schedules=schedules_from_config(config), lease_s=120, grace_s=30)
    summary = worker.run(install_signals=True)     # until SIGINT/SIGTERM or worker.stop()

What runs, all in one event loop (plus one heartbeat thread, `turing.leases`):

- Processing: the orchestrator claims and executes queued tasks of the worker's workflows
  (`--workflow`, default all) with up to `concurrency` in flight; when the queue is empty
  the worker idles `idle_s` and looks again. Discovery is not part of it: ticks do that.
- Schedules (`turing.schedules`): at each tick the worker tries to insert the tick into
  `turing_schedule_ticks`; the one worker that succeeds runs it (discover and enqueue, or
  for `discover = false` process queued tasks). Every worker takes part in every schedule;
  `--workflow` limits what a worker processes, not which ticks it fires.
- Heartbeats: a thread extends the lease of every task this worker holds every
  `heartbeat_s` (a third of the lease), so a long task is never reclaimed while its worker
  lives, and a dead worker's tasks are reclaimed by any other worker once the lease expires.
  A reclaimed task's late result is discarded and recorded (`Store.complete` is guarded by
  owner), never written twice.
- Stop (SIGINT/SIGTERM or `stop()`): no new task is claimed and no tick fired; in-flight
  tasks get `grace_s` to finish; those still running are then cancelled and released to the
  queue (`Store.release`, attempt not counted), so none is left `running`. A second signal
  exits at once (exit code 128 + signal): its tasks are reclaimed when their lease expires.
- The project's batch limits (`[limits] batch_tokens`, `batch_cost`) count over the
  worker's whole life: once reached it stops claiming and shuts down like on a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from turing.limits.budget import Budget
from turing.orchestrator import BatchLimits, Discovery, OnResult, Orchestrator, Report
from turing.queue.session import ProcessingSession
from turing.result import RunResult
from turing.schedules import Schedule, claim_tick, finish_tick, resolve_workflows, when
from turing.sources import input_of, subject_of
from turing.store.leases import LeaseStore
from turing.store.store import Store, TaskRow

Log = Callable[[str], None]
logger = logging.getLogger(__name__)
CIRCUIT_PAUSE_S = 10.0  # an open circuit: the worker waits, it does not stop


@dataclass
class TickRun:
    """One tick this worker won and ran."""

    schedule: str
    tick_at: float
    discover: bool
    tasks: int = 0  # enqueued (discover) or processed (discover = false)
    error: str | None = None
    duration_s: float = 0.0
    per_workflow: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "tick_at": self.tick_at,
            "discover": self.discover,
            "tasks": self.tasks,
            "per_workflow": self.per_workflow,
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class WorkerSummary:
    """What one worker did in its life."""

    worker_id: str
    report: Report = field(default_factory=Report)
    ticks: list[TickRun] = field(default_factory=list)
    released: int = 0
    stop_reason: str | None = None
    forced: bool = False  # the grace period ran out and in-flight tasks were released
    heartbeats: int = 0
    duration_s: float = 0.0

    @property
    def enqueued(self) -> int:
        return sum(t.tasks for t in self.ticks if t.discover)

    def as_dict(self) -> dict[str, Any]:
        report = self.report.as_dict()
        for key in ("dry_run", "discovered", "duration_s", "stopped"):
            report.pop(key, None)
        return {
            "worker": self.worker_id,
            "duration_s": round(self.duration_s, 3),
            "stop_reason": self.stop_reason,
            "forced": self.forced,
            "released": self.released,
            "heartbeats": self.heartbeats,
            "ticks_fired": len(self.ticks),
            "enqueued": self.enqueued,
            "ticks": [t.as_dict() for t in self.ticks],
            **report,
        }


class Worker:
    """A long-running loop around one Orchestrator (which it does not close)."""

    def __init__(
        self,
        orch: Orchestrator,
        *,
        schedules: Sequence[Schedule] = (),
        workflows: Sequence[str] | None = None,
        grace_s: float = 30.0,
        lease_s: float | None = None,
        idle_s: float = 1.0,
        heartbeat_s: float | None = None,
        tick_poll_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        log: Log | None = None,
        on_result: OnResult | None = None,
        hard_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.orch = orch
        if lease_s is not None and lease_s != orch.lease_s:
            raise ValueError(
                f"the worker's lease ({lease_s:g}s) is the orchestrator's ({orch.lease_s:g}s): "
                "build the Orchestrator with lease_s=..."
            )
        self.lease_s = orch.lease_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else max(0.05, self.lease_s / 3)
        self.grace_s = max(0.0, grace_s)
        self.idle_s = max(0.01, idle_s)
        self.tick_poll_s = max(0.01, tick_poll_s)
        self.clock = clock
        self.workflows = [orch.registry.get(w).name for w in workflows] if workflows else None
        self.schedules = resolve_workflows(schedules, orch.registry.get)
        self.gated: set[str] = set()  # processed only on the ticks of `discover = false` schedules
        for s in self.schedules:
            if not s.discover:
                self.gated |= set(s.workflows or (wf.name for wf in orch.registry))
        selected = self.workflows or [wf.name for wf in orch.registry]
        self.continuous: list[str] | None = [n for n in selected if n not in self.gated]
        if self.workflows is None and not self.gated:
            self.continuous = None  # everything the registry knows
        self._log_to = log  # the CLI's printer; the library logs under turing.worker

        def say(message: str) -> None:
            logger.info("%s: %s", self.worker_id, message)
            if self._log_to is not None:
                self._log_to(message)

        self._log = say
        self._on_result_hook = on_result
        self._hard_exit = hard_exit or _exit_now
        self.summary = WorkerSummary(orch.worker_id)
        self._stopping = False
        self._pending_stop: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopped: asyncio.Event | None = None
        self._session: ProcessingSession | None = None
        self._limits: BatchLimits = orch.batch_limits
        self._tick_tasks: set[asyncio.Task[None]] = set()
        self._gated_running: set[str] = set()

    @property
    def worker_id(self) -> str:
        return self.orch.worker_id

    @property
    def stopping(self) -> bool:
        return self._stopping

    # ------------------------------------------------------------------- control
    def run(self, *, install_signals: bool = False) -> WorkerSummary:
        """Run until stopped; SIGINT/SIGTERM stop it when `install_signals` (main thread)."""
        return asyncio.run(self.arun(install_signals=install_signals))

    def stop(self, reason: str = "stop requested") -> None:
        """Begin a graceful stop; safe to call from any thread, also before `run`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._pending_stop = self._pending_stop or reason
        elif threading.get_ident() == self._loop_thread:
            self._begin_stop(reason)
        else:
            loop.call_soon_threadsafe(self._begin_stop, reason)

    def _begin_stop(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.summary.stop_reason = reason
        if self._stopped is not None:
            self._stopped.set()
        self._log(
            f"stopping ({reason}): claiming no new work; in-flight tasks have "
            f"{self.grace_s:g}s to finish"
        )

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            self._log(
                f"{name} again: exiting now; unfinished tasks are reclaimed by other workers "
                f"once their lease expires (at most {self.lease_s:g}s)"
            )
            self._hard_exit(128 + signum)
            return
        self._begin_stop(f"{name} received")

    def _install_signals(self) -> list[int]:
        assert self._loop is not None
        loop = self._loop
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, int(sig))
            except (NotImplementedError, RuntimeError, ValueError):  # not Unix / not main
                continue
            installed.append(int(sig))
        return installed

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the worker starts stopping."""
        assert self._stopped is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), max(0.0, seconds))

    # ---------------------------------------------------------------------- main
    async def arun(self, *, install_signals: bool = False) -> WorkerSummary:
        started = time.perf_counter()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopped = asyncio.Event()
        before = asyncio.all_tasks()
        self._limits = _WorkerLimits(self.orch.batch_limits, self)
        # one session for the worker's life: every processing round and tick runs inside it
        # (lease heartbeats at this worker's interval, limiter keep-alive, shared hosts)
        session = self.orch.session(heartbeat_s=self.heartbeat_s)
        await session.__aenter__()
        self._session = session
        installed = self._install_signals() if install_signals else []
        if self._pending_stop is not None:
            self._begin_stop(self._pending_stop)
        loops = {
            asyncio.create_task(self._process_loop(), name="turing-process"),
            asyncio.create_task(self._schedule_loop(), name="turing-schedules"),
        }
        waiter = asyncio.create_task(self._stopped.wait())
        crash: BaseException | None = None
        try:
            waiting: set[asyncio.Task[Any]] = {waiter, *loops}
            while not self._stopping and waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for t in done & loops:  # a loop ends early only by a bug: stop, then raise
                    if not t.cancelled() and t.exception() is not None:
                        crash = t.exception()
                        self._begin_stop(f"internal error: {type(crash).__name__}: {crash}")
            await self._drain_within_grace(loops, before)
        finally:
            waiter.cancel()
            for sig in installed:
                with contextlib.suppress(Exception):
                    self._loop.remove_signal_handler(sig)
            self.summary.released = await asyncio.to_thread(self._release_owned)
            await session.__aexit__(None, None, None)
            self.summary.heartbeats = session.beats
            self.summary.duration_s = time.perf_counter() - started
            self.summary.report.duration_s = self.summary.duration_s
        if crash is not None:
            raise crash
        return self.summary

    async def _drain_within_grace(
        self, loops: set[asyncio.Task[None]], before: set[asyncio.Task[Any]]
    ) -> None:
        """Let in-flight work finish within the grace period, then cancel what is left."""
        deadline = time.monotonic() + self.grace_s
        while True:
            busy = {t for t in (*loops, *self._tick_tasks) if not t.done()}
            left = deadline - time.monotonic()
            if not busy or left <= 0:
                break
            await asyncio.wait(busy, timeout=left)
        if not busy:
            return
        self.summary.forced = True
        self._log(
            f"grace period of {self.grace_s:g}s is over: cancelling the tasks still running "
            "and releasing them to the queue"
        )
        # The orchestrator runs each task in its own asyncio task; cancel every task started
        # since this worker began (the event loop is the worker's), then release the leases.
        mine = asyncio.all_tasks() - before
        mine.discard(asyncio.current_task())
        for t in mine:
            t.cancel()
        if mine:
            await asyncio.wait(mine, timeout=5)

    # ---------------------------------------------------------------- processing
    async def _process_loop(self) -> None:
        failures = 0
        waited: set[str] = set()  # workflows a period budget made wait in the last round
        while not self._stopping:
            if self.continuous == []:  # every selected workflow runs on its ticks only
                await self._sleep(3600)
                continue
            try:
                report = await self.orch.aprocess(
                    None,
                    workflows=self.continuous,
                    discover=False,
                    on_result=self._result,
                    limits=self._limits,
                    session=self._session,
                )
            except Exception as exc:  # the database went away, say: keep trying, slower
                failures += 1
                delay = min(30.0, self.idle_s * 2 ** min(failures, 8))
                self._log(
                    f"processing failed ({type(exc).__name__}: {exc}); trying again in {delay:.1f}s"
                )
                await self._sleep(delay)
                continue
            failures = 0
            for name, why in sorted(report.waiting.items()):  # a period budget is full
                if name not in waited:  # said when it starts waiting, not every round
                    self._log(f"{name} waits: {why}")
                self.summary.report.waiting[name] = why
            waited = set(report.waiting)
            if report.circuit_open:  # a model host is down: its tasks wait; so do we, a while
                self._log(f"{report.stopped}; looking again in {CIRCUIT_PAUSE_S:g}s")
                await self._sleep(CIRCUIT_PAUSE_S)
                continue
            if report.stopped and not self._stopping:  # a batch limit over the worker's life
                self._begin_stop(report.stopped)
                return
            if report.processed == 0:
                await self._sleep(self.idle_s)

    def _result(self, task: TaskRow | None, result: RunResult, outcome: str) -> None:
        self.summary.report.add(result, outcome)
        if task is not None and outcome != "succeeded":
            if outcome == "lost":
                why = "its lease was lost (another worker reclaimed it): result discarded"
            else:
                first = result.errors[0] if result.errors else None
                why = f"{outcome}" + (f" ({first.kind}: {first.message[:200]})" if first else "")
            self._log(f"task {task.id} {task.workflow}/{task.subject}: {why}")
        if self._on_result_hook is not None:
            self._on_result_hook(task, result, outcome)

    def _release_owned(self) -> int:
        """Release every task this worker still holds (after in-flight work stopped)."""
        store = self.orch.store
        try:
            held = owned_tasks(store, self.worker_id)
            released = [t.id for t in held if store.release(t, self.worker_id)]
        except Exception as exc:
            self._log(
                f"could not release unfinished tasks ({type(exc).__name__}: {exc}); they are "
                f"reclaimed once their lease expires (at most {self.lease_s:g}s)"
            )
            return 0
        if released:
            ids = ", ".join(map(str, released[:20])) + (" ..." if len(released) > 20 else "")
            self._log(f"released {len(released)} unfinished task(s) to the queue: {ids}")
        return len(released)

    # ----------------------------------------------------------------- schedules
    async def _schedule_loop(self) -> None:
        if not self.schedules:
            return
        seen: dict[str, float] = {}
        while not self._stopping:
            now = self.clock()
            retry_soon = False
            for s in self.schedules:
                if self._stopping:
                    return
                tick = s.latest_tick(now)
                if s.name in seen and tick <= seen[s.name]:
                    continue
                if s.name in self._gated_running:  # its previous tick is still processing
                    seen[s.name] = tick
                    continue
                try:
                    won = await asyncio.to_thread(
                        claim_tick, self.orch.store, s.name, tick, self.worker_id
                    )
                except Exception as exc:
                    self._log(f"schedule {s.name}: could not claim a tick ({exc}); trying again")
                    retry_soon = True
                    continue
                seen[s.name] = tick
                if won:
                    await self._fire(s, tick)
            now = self.clock()
            wait = min(s.next_tick(now) for s in self.schedules) - now
            if retry_soon:
                wait = min(wait, 1.0)
            await self._sleep(min(max(wait, 0.0) + 0.001, self.tick_poll_s))

    async def _fire(self, s: Schedule, tick: float) -> None:
        run = TickRun(s.name, tick, s.discover)
        self.summary.ticks.append(run)
        if not s.discover:
            self._gated_running.add(s.name)
            task = asyncio.create_task(self._gated(s, run), name=f"turing-tick-{s.name}")
            self._tick_tasks.add(task)
            task.add_done_callback(self._tick_tasks.discard)
            return
        started = time.perf_counter()
        try:
            found = await asyncio.to_thread(self._discover, s)
        except Exception as exc:
            run.error = f"discovery failed: {type(exc).__name__}: {exc}"
        else:
            run.per_workflow = {d.workflow: d.enqueued for d in found}
            run.tasks = sum(d.enqueued for d in found)
            errors = [d.error for d in found if d.error]
            run.error = "; ".join(errors) if errors else None
        run.duration_s = time.perf_counter() - started
        await asyncio.to_thread(self._finish_tick, s, run)
        detail = ", ".join(f"{k} {v}" for k, v in run.per_workflow.items() if v)
        self._log(
            f"tick {s.name} {when(tick, s.timezone)}: enqueued {run.tasks}"
            + (f" ({detail})" if detail else "")
            + (f"; error: {run.error}" if run.error else "")
        )

    def _discover(self, s: Schedule) -> list[Discovery]:
        names = list(s.workflows) if s.workflows else None
        if s.max_tasks is None:
            return self.orch.discover_pending_tasks(names)
        return discover_new(self.orch, names, s.max_tasks)

    async def _gated(self, s: Schedule, run: TickRun) -> None:
        started = time.perf_counter()
        scope = ", ".join(s.workflows) if s.workflows else "every workflow"
        cap = f"up to {s.max_tasks}" if s.max_tasks else "all"
        self._log(f"tick {s.name} {when(run.tick_at, s.timezone)}: processing {cap} ({scope})")
        try:
            report = await self.orch.aprocess(
                s.max_tasks,
                workflows=list(s.workflows) if s.workflows else None,
                discover=False,
                limits=self._limits,
                session=self._session,
                on_result=self._result,
            )
            run.tasks = report.processed
            run.per_workflow = {k: v.processed for k, v in report.per_workflow.items()}
        except Exception as exc:
            run.error = f"processing failed: {type(exc).__name__}: {exc}"
        finally:
            self._gated_running.discard(s.name)
            run.duration_s = time.perf_counter() - started
            await asyncio.to_thread(self._finish_tick, s, run)
        self._log(
            f"tick {s.name} {when(run.tick_at, s.timezone)}: processed {run.tasks}"
            + (f"; error: {run.error}" if run.error else "")
        )

    def _finish_tick(self, s: Schedule, run: TickRun) -> None:
        try:
            finish_tick(
                self.orch.store, s.name, run.tick_at, self.worker_id, tasks=run.tasks,
                error=run.error,
            )  # fmt: skip
        except Exception as exc:
            self._log(f"schedule {s.name}: could not record the tick's outcome ({exc})")


# --------------------------------------------------------------------------- helpers
def discover_new(
    orch: Orchestrator, workflows: Sequence[str] | None, limit: int
) -> list[Discovery]:
    """Discovery that enqueues at most `limit` new tasks per workflow.

    Subjects that already have a task (of any status) are skipped before counting, so
    failed items at the top of a source never starve the rest.
    """
    selected = [orch.registry.get(w) for w in workflows] if workflows else list(orch.registry)
    found = []
    for wf in selected:
        if wf.source is None:
            continue
        d = Discovery(wf.name, priority=wf.source.priority or wf.priority)
        started = time.perf_counter()
        key = wf.source.key or wf.subject_key
        assert key is not None
        try:
            with orch.store.db.read() as tx:
                d.count = wf.source.count(tx)
            _, known = orch.store.preview(wf.name, 0)
            fresh: list[tuple[str, dict[str, Any]]] = []
            for rows in wf.source.stream(orch.store.db):  # stops reading once enough are new
                for r in rows:
                    subject = subject_of(r, key)
                    if subject not in known and len(fresh) < limit:
                        known.add(subject)
                        fresh.append((subject, input_of(r, wf.input.fields)))
                if len(fresh) >= limit:
                    break
            d.sample_keys = [s for s, _ in fresh[:5]]
            if fresh:
                d.enqueued = orch.store.enqueue(wf.name, wf.version, fresh, priority=d.priority)
        except Exception as exc:
            d.error = f"source of {wf.name!r} failed: {type(exc).__name__}: {exc}"
        d.query_ms = (time.perf_counter() - started) * 1000
        found.append(d)
    return found


def owned_tasks(store: Store, owner: str) -> list[TaskRow]:
    """The tasks `owner` holds (status running, its lease)."""
    return LeaseStore(store.db).owned(owner)


class _WorkerLimits(BatchLimits):
    """The project's batch limits over the worker's whole life, and "stop claiming" on stop."""

    _inner: BatchLimits
    _worker: Worker
    _budget: Budget

    def __init__(self, inner: BatchLimits, worker: Worker) -> None:
        super().__init__(inner.tokens, inner.cost)
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_budget", inner.budget())

    def budget(self) -> Budget:
        """One budget for the worker's whole life (every processing round shares it)."""
        return self._budget

    def exceeded(self, report: Report) -> str | None:
        if self._worker.stopping:
            return "worker stopping: no new work claimed"
        return self._inner.exceeded(self._worker.summary.report)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
