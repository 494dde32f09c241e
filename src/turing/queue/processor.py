"""The Processor: claim -> execute -> complete for a set of workflows.

    processor = Processor(registry, executor, store, owner="host:pid:x", lease_s=60)
    async with ProcessingSession(store, processor.owner, lease_s=60):
        await processor.drain(workflows, None, report)

It keeps up to `concurrency` tasks in flight, claims ahead in the background, and
group-commits finished tasks (guarded by status and lease owner, sinks inside the same
transaction; see `Store.complete_many`). It owns nothing that outlives a call: leases are
kept alive by the `ProcessingSession` the caller opens around it. Collaborators are given
to the constructor; nothing here reaches into the orchestrator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from turing.errors import StoreError
from turing.executor import Executor
from turing.limits.budget import Budget
from turing.observe.events import NOOP, Observer
from turing.queue.report import BatchLimits, Report
from turing.registry import Registry
from turing.result import ErrorKind, RunResult
from turing.store.states import Outcome
from turing.store.store import Completion, Store, TaskRow
from turing.workflow import Workflow

log = logging.getLogger(__name__)

OnResult = Callable[[TaskRow | None, RunResult, str], None]


class Processor:
    """Claims, executes and completes tasks of a registry's workflows for one owner;
    `observer` is told of each completed task and each reclaim (metrics)."""

    def __init__(
        self,
        registry: Registry,
        executor: Executor,
        store: Store,
        *,
        owner: str,
        concurrency: int = 8,
        lease_s: float = 60.0,
        batch_limits: BatchLimits | None = None,
        completion_patience_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        observer: Observer | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("the lease must be positive")
        self.observer = observer or NOOP
        self.registry = registry
        self.executor = executor
        self.store = store
        self.owner = owner
        self.concurrency = max(1, concurrency)
        self.lease_s = lease_s
        self.batch_limits = batch_limits or BatchLimits()
        # retry a failed completion for at most half a lease: the task must still be ours
        self.completion_patience_s = (
            completion_patience_s if completion_patience_s is not None else min(30.0, lease_s / 2)
        )
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def drain(
        self,
        selected: Sequence[Workflow],
        max_tasks: int | None,
        report: Report,
        on_result: OnResult | None = None,
        *,
        task_ids: Sequence[int] | None = None,
        limits: BatchLimits | None = None,
        refill: Callable[[], Coroutine[Any, Any, int]] | None = None,
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
        time, each taking everything that finished meanwhile.

        `refill` (discovery: returns how many tasks it enqueued) runs when the queue ran dry
        while tasks are still in flight and something was committed since it last ran: a
        workflow whose source reads another's sink starts as soon as those rows exist,
        instead of waiting for the round's slowest (or hung) task."""
        batch_limits = limits or self.batch_limits
        budget = batch_limits.budget()  # each call reserves its quote here before it is made
        names = [w.name for w in selected]
        remaining = max_tasks if max_tasks is not None else -1  # claims still allowed
        buffer: deque[TaskRow] = deque()  # claimed, not started yet
        finished: list[Completion] = []  # not committed yet
        slots: set[asyncio.Task[None]] = set()  # each runs one task at a time
        claiming: asyncio.Task[list[TaskRow]] | None = None
        flushing: asyncio.Task[None] | None = None
        asked = 0  # tasks the claim under way asked for
        dry = False  # the last claim came back short: wait for a task to finish first
        refilling: asyncio.Task[int] | None = None
        committed_since_refill = False
        wake = asyncio.Event()  # anything happened: a task finished, a claim or commit ended
        bounded = batch_limits != BatchLimits()  # any batch limit is set
        circuit_stop: str | None = None  # a model host's circuit opened: why we stopped
        chain = not bounded  # a slot goes on with the next buffered task by itself
        # With a batch limit (the worker's stop is one) claims only fill free slots: what is
        # claimed starts at once, after the limit was checked, and nothing sits claimed
        # while a stop waits for the running tasks.
        target = self.concurrency + (0 if bounded else self.prefetch)

        def poke(_: object = None) -> None:
            wake.set()

        async def slot(task: TaskRow) -> None:
            while True:
                finished.append(await self._one(task, budget))
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
                    committed_since_refill = True
                if refilling is not None and refilling.done():
                    if refilling.result():  # new tasks: the queue is worth claiming from
                        dry = False
                    refilling = None
                if claiming is not None and claiming.done():
                    claimed, claiming = claiming.result(), None
                    dry = len(claimed) < asked
                    if remaining >= 0:
                        remaining -= len(claimed)
                    buffer.extend(claimed)
                if finished:
                    dry = False  # work moved on: the queue may have more (retries, new tasks)
                if budget.refused and not report.stopped:  # a call found no room: stop here
                    report.stopped = (
                        f"batch budget reached ({budget.refused}); stopped claiming new work"
                    )
                    remaining = 0
                    await self._release_claimed(buffer)
                for waiting, why in _budget_waits(finished):  # its tasks wait: claim others
                    if waiting in names:
                        report.waiting[waiting] = why
                        names = [n for n in names if n != waiting]
                        if not names:  # (an empty list would claim every workflow)
                            remaining = 0
                circuit = None if report.stopped else _circuit_open(finished)
                if circuit is not None:  # the model host is unreachable: stop claiming
                    report.stopped = circuit_stop = circuit
                    report.circuit_open = True
                    remaining = 0
                    await self._release_claimed(buffer)
                if buffer and len(slots) < self.concurrency:
                    if bounded:
                        await settle()
                        stop = batch_limits.exceeded(report)
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
                        stop = batch_limits.exceeded(report)
                        if stop:
                            report.stopped = stop
                            remaining = want = 0
                    if want > 0:
                        asked = want
                        claiming = asyncio.create_task(self._claim(names, asked, task_ids))
                        claiming.add_done_callback(poke)
                if (
                    refill is not None and dry and refilling is None and slots
                    and committed_since_refill and not report.stopped
                ):  # fmt: skip
                    committed_since_refill = False
                    refilling = asyncio.create_task(refill())
                    refilling.add_done_callback(poke)
                if not (slots or buffer or finished or flushing or claiming or refilling):
                    break
                await wake.wait()
            if circuit_stop is not None and report.stopped == circuit_stop:
                left = await asyncio.to_thread(self.store.queue_overview, names)
                report.stopped += (
                    f"; stopped claiming: {left.pending + left.waiting_retry} task(s) left "
                    "pending (attempts not counted)"
                )
        finally:
            # Only when the drain was abandoned (an error, a cancellation): hand back what
            # was claimed but never started, now or once the claim in progress returns.
            if claiming is not None:
                claiming.add_done_callback(self._release_when_claimed)
            if refilling is not None and not refilling.done():
                refilling.cancel()
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
            self.owner,
            n,
            workflows=names,
            lease_s=self.lease_s,
            task_ids=task_ids,
            on_reclaimed=self.observer.reclaimed,
        )

    async def _release_claimed(self, buffer: deque[TaskRow]) -> None:
        tasks = list(buffer)
        buffer.clear()
        if tasks:
            await asyncio.to_thread(self._release_now, tasks)

    def _release_now(self, tasks: list[TaskRow]) -> None:
        for task in tasks:
            with contextlib.suppress(Exception):  # else its lease expires and it is reclaimed
                self.store.release(task, self.owner)

    def _release_when_claimed(self, claim: asyncio.Task[list[TaskRow]]) -> None:
        if not claim.cancelled() and claim.exception() is None:
            self._release_now(claim.result())

    async def run_task(self, task: TaskRow) -> Completion:
        """One claimed task run into its Completion, not completed yet: provider batches
        (`turing.batch`) run their tasks through it with a replaying executor."""
        return await self._one(task)

    async def _one(self, task: TaskRow, budget: Budget | None = None) -> Completion:
        wf = self.registry.get(task.workflow)
        # a task tried before failed: its cached answers are what failed, ask afresh
        result = await self.executor.run(
            wf,
            task.input,
            fresh=task.attempts > 1,
            budget=budget,
            subject=task.subject,
            task_id=task.id,
            feedback=task.feedback,
        )
        sink, output = wf.sink, result.output
        hold = None
        if result.ok and (wf.review or wf.checks or result.holds):  # the sink waits
            reasons = [*result.holds, wf.hold_reason(output, task.input, task.subject)]
            hold = "; ".join(r for r in reasons if r) or None

        def write(tx: Any) -> None:
            if sink is not None and isinstance(output, dict):
                task_info = {"subject": task.subject, "id": task.id, "input": task.input}
                sink.write(tx, wf.bindable(output), task_info)

        retry_at = None
        if not result.ok:
            delay = wf.retry.delay(task.attempts, result.errors[0], self._rng)
            retry_at = None if delay is None else time.time() + delay
        return Completion(task, result, write, retry_at, hold)

    async def _flush(
        self, done: list[Completion], report: Report, on_result: OnResult | None
    ) -> None:
        """Group commit of finished tasks, off the event loop so calls in flight go on."""
        outcomes = await asyncio.to_thread(self.complete, done)
        for item, outcome in zip(done, outcomes, strict=True):
            report.add(item.result, outcome)
            self.observer.finished(item.task, item.result, outcome)
            if on_result is not None:
                on_result(item.task, item.result, outcome)

    def complete(self, done: Sequence[Completion]) -> list[Outcome]:
        """Complete finished tasks; a database fault is retried with backoff for up to
        `completion_patience_s` (a restart, a dropped connection), and if the database
        stays away each task is given back (deferred, its result in history): a valid
        answer is never dead-lettered because the database blinked."""
        waited, delay = 0.0, 0.05
        while True:
            try:
                return self.store.complete_many(done, self.owner, worker=self.owner)
            except StoreError as exc:
                if waited >= self.completion_patience_s:
                    log.error(
                        "completing %d task(s) failed for %.1fs (%s): giving them back",
                        len(done),
                        waited,
                        exc,
                    )
                    return [self._defer(item, f"completing failed: {exc}") for item in done]
                log.warning(
                    "completing %d task(s) failed (%s); again in %.2fs", len(done), exc, delay
                )
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)

    def _defer(self, item: Completion, reason: str) -> Outcome:
        try:
            return self.store.defer(item, self.owner, self.owner, reason)
        except Exception as exc:  # still away: the lease runs out and the task comes back
            log.error("task %d: giving it back failed too (%s)", item.task.id, exc)
            return Outcome.DEFERRED

    async def dry_execute(
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
                output = wf.bindable(result.output)
                wf.sink.write(tx, output, {"subject": subject, "id": None, "input": data})
                raise _Rollback
        except _Rollback:
            return "succeeded"
        except Exception:
            return "sink"


def _circuit_open(done: list[Completion]) -> str | None:
    """Why to stop: a finished task found its model host's circuit open (its text from
    "circuit open for HOST", without the retries that led there), else None."""
    for item in done:
        errors = item.result.errors
        if errors and errors[0].kind == ErrorKind.CIRCUIT_OPEN:
            text = errors[0].message
            text = text[max(0, text.find("circuit open for ")) :]
            return text.split(" (after ")[0]
    return None


def _budget_waits(done: list[Completion]) -> list[tuple[str, str]]:
    """(workflow, why) of finished tasks a period budget had no room for: deferred until
    it has (`ErrorKind.BUDGET_WAIT`); the drain claims no more of those workflows."""
    return [
        (item.task.workflow, item.result.errors[0].message)
        for item in done
        if item.result.errors and item.result.errors[0].kind == ErrorKind.BUDGET_WAIT
    ]


class _Rollback(Exception):
    pass
