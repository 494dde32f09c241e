"""Provider batches behind the queue's guarantees: submit, poll, ingest, cancel.

    batcher = Batcher(registry, executor, store, processor, owner="host:pid:x")
    await batcher.tick()        # submit what is due, ingest what ended (a worker's loop)
    await batcher.poll(force=True)   # `turing batches poll`

Lanes: a workflow whose one LLM step's (first) actor has `batch = "on"` or `"auto"` is a
lane of that actor; its tasks are never claimed synchronously. Submission claims them with
the ordinary guarded claim, runs each through the executor with a `ReplayActor` that
captures the first request, records the batch (status 'submitting', idempotency key) and
moves the tasks `running` -> `submitted` in one transaction, then calls the provider and
records its batch id. Ingestion takes items and tasks back (`submitted` -> `running`,
guarded by the item's state: one worker per item), replays the answer through the
executor and completes through `Processor.complete`, the synchronous path's guarded
completion with the sink in its transaction. See docs/models.md, "Provider batches".
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from turing.actors.base import Actor, Usage
from turing.actors.settings import ActorSettings
from turing.batch.clients import PROVIDERS, client_for
from turing.batch.protocol import (
    Answer,
    BatchClient,
    BatchRequest,
    Failure,
    ProviderBatch,
    Result,
)
from turing.batch.replay import ReplayActor, Replayed, request_hash
from turing.errors import ActorError, TuringError
from turing.executor import Executor
from turing.queue.processor import OnResult, Processor
from turing.registry import Registry
from turing.result import RunResult
from turing.steps import LLMStep
from turing.store.batches import Batches, BatchRow, ItemRow, NewItem
from turing.store.history import Entry
from turing.store.store import Completion, Store, TaskRow
from turing.workflow import Workflow

log = logging.getLogger(__name__)

SUBMIT_GRACE_S = 300.0  # a 'submitting' batch older than this lost its submitter
BUDGET_HOLD_S = 26 * 3600.0  # a batch's budget hold outlives its 24 h window
REASK_KIND = "batch_reask"
FINAL = {
    "completed": "ingested",
    "expired": "expired",
    "cancelled": "cancelled",
    "failed": "failed",
}


@dataclass(frozen=True)
class Lane:
    """One batch-enabled actor and the workflows whose LLM step it answers."""

    ref: str
    actor: Actor
    settings: ActorSettings
    workflows: tuple[str, ...]


@dataclass
class BatchReport:
    """What one tick, poll or cancel did."""

    submitted: dict[int, int] = field(default_factory=dict)  # batch id -> requests
    polled: int = 0
    succeeded: int = 0
    failed: int = 0
    reasked: int = 0
    returned: int = 0
    finished: dict[int, str] = field(default_factory=dict)  # batch id -> final status
    notes: list[str] = field(default_factory=list)
    # told of each task ingested and completed (the run's report, the worker's summary)
    on_result: OnResult | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "on_result"}


class Batcher:
    def __init__(
        self,
        registry: Registry,
        executor: Executor,
        store: Store,
        processor: Processor,
        *,
        owner: str,
        lease_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        clients: Callable[[Actor], BatchClient] = client_for,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.store = store
        self.batches = Batches(store)
        self.processor = processor
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock
        self._clients = clients
        self._lanes: list[Lane] | None = None
        self.chunk = 200  # items taken (and completed) per transaction while ingesting
        self._refused_until: dict[str, float] = {}  # lane -> no submission before (refusals)
        self.notes: list[str] = []  # why a workflow with a batch-enabled actor runs sync

    # ---------------------------------------------------------------------- lanes
    @property
    def lanes(self) -> list[Lane]:
        if self._lanes is None:
            self._lanes = self._plan()
        return self._lanes

    def batched(self) -> set[str]:
        """Workflows whose tasks go through batches (never claimed synchronously)."""
        return {name for lane in self.lanes for name in lane.workflows}

    def _plan(self) -> list[Lane]:
        lanes: dict[str, tuple[Actor, ActorSettings, list[str]]] = {}
        for wf in self.registry:
            found = self._lane_of(wf)
            if found is not None:
                ref, actor, settings = found
                lanes.setdefault(ref, (actor, settings, []))[2].append(wf.name)
        return [Lane(ref, a, s, tuple(names)) for ref, (a, s, names) in lanes.items()]

    def _lane_of(self, wf: Workflow) -> tuple[str, Actor, ActorSettings] | None:
        llm = [cs for cs in wf.steps if isinstance(cs.step, LLMStep)]
        steps = [cs.step for cs in llm if isinstance(cs.step, LLMStep)]
        enabled = [s for s in steps if self._settings(s.actors[0]) is not None]
        if not enabled:
            return None
        step = enabled[0]
        why = None
        if len(llm) > 1:
            why = f"it has {len(llm)} LLM steps (batches take workflows with one)"
        elif step.grade is not None or step.consistency is not None:
            why = "its LLM step has grade= or consistency= (gates ask more calls at once)"
        ref = step.actors[0]
        settings = self._settings(ref)
        assert settings is not None
        if why is None and settings.provider not in PROVIDERS:
            why = f"provider {settings.provider!r} has no batch API (only {', '.join(PROVIDERS)})"
        if why is not None:
            log.warning("workflow %r runs synchronously: %s", wf.name, why)
            self.notes.append(
                f"workflow {wf.name!r} runs synchronously although actor {ref!r} has "
                f"batch = {settings.batch!r}: {why}"
            )
            return None
        return ref, self.executor.resolve(ref), settings

    def _settings(self, ref: str) -> ActorSettings | None:
        try:
            actor = self.executor.resolve(ref)
        except TuringError:
            return None
        settings = getattr(actor, "settings", None)
        if isinstance(settings, ActorSettings) and settings.batch != "off":
            return settings
        return None

    def _lane(self, ref: str) -> Lane | None:
        return next((lane for lane in self.lanes if lane.ref == ref), None)

    # ---------------------------------------------------------------------- ticks
    async def tick(
        self, workflows: Sequence[str] | None = None, on_result: OnResult | None = None
    ) -> BatchReport:
        """Submit what is due, then poll batches whose poll interval passed; `on_result`
        hears of each task ingested."""
        report = BatchReport(notes=list(self.notes), on_result=on_result)
        for lane in self.lanes:
            names = [w for w in lane.workflows if workflows is None or w in workflows]
            if self.clock() < self._refused_until.get(lane.ref, 0.0):
                continue  # the provider refused the last batch: not again every round
            if names and self._due(lane, names):
                await self.submit(lane, names, report)
        await self.poll(report=report)
        return report

    def _due(self, lane: Lane, names: Sequence[str]) -> bool:
        pending = self.batches.pending(names)
        n = sum(count for count, _ in pending.values())
        if n == 0:
            return False
        if lane.settings.batch == "on":
            return True
        oldest = min(at for _, at in pending.values())
        waited = self.clock() - oldest
        return n >= lane.settings.batch_min_tasks or waited >= lane.settings.batch_max_wait

    # ----------------------------------------------------------------- submission
    async def submit(
        self, lane: Lane, names: Sequence[str] | None = None, report: BatchReport | None = None
    ) -> int | None:
        """Claim, render and submit one batch of `lane`'s pending tasks; its id (None:
        nothing to submit)."""
        report = report if report is not None else BatchReport()
        claimed = self.store.claim(
            self.owner,
            lane.settings.batch_max_tasks,
            workflows=list(names or lane.workflows),
            lease_s=self.lease_s,
        )
        if not claimed:
            return None
        now = self.clock()
        requests: list[BatchRequest] = []
        items: list[NewItem] = []
        ended: list[Completion] = []
        for task in claimed:
            chain = self.batches.chain(task.id, task.attempts)
            replay = ReplayActor(lane.actor, [_replayed(c) for c in chain], settings=lane.settings)
            completion = await self._run(lane, task, replay)
            if replay.captured is not None:
                rnd = len(chain) + 1
                custom = f"t{task.id}-a{task.attempts}-r{rnd}"
                requests.append(BatchRequest(custom, replay.captured))
                since = chain[0].since if chain else now
                items.append(
                    NewItem(
                        task.id, task.attempts, rnd, custom, request_hash(replay.captured), since
                    )
                )
            elif replay.stale:  # the re-ask chain no longer fits the workflow: start afresh
                self.batches.drop_chain(task.id, task.attempts)
                self.store.release(task, self.owner)
            else:  # the run ended before any call (input invalid, template): as sync does
                ended.append(completion)
        if ended:
            self.processor.complete(ended)
        key = uuid.uuid4().hex
        hold = None
        if items:
            tasks = {t.id: t for t in claimed}
            requests, items, hold = self._reserve(
                lane, key, requests=requests, items=items, tasks=tasks, report=report
            )
        if not items:
            return None
        client = self._clients(lane.actor)
        batch_id, kept = self.batches.record(
            lane.ref, client.provider, key, self.owner, items, budget_hold=hold
        )
        ids = {i.custom_id for i in kept}
        sent = [r for r in requests if r.custom_id in ids]
        try:
            created = await client.create(sent, key, lane.settings.batch_completion_window)
        except ActorError as exc:
            if exc.transient or exc.kind in ("timeout", "connection", "unknown"):
                # it may exist at the provider: the next poll finds it by key (or not)
                log.warning("batch %d: creating it failed (%s); kept as submitting", batch_id, exc)
                report.notes.append(
                    f"batch {batch_id}: creating it failed ({exc}); a poll "
                    "finds it by its key or returns its tasks"
                )
                return batch_id
            self._refused_until[lane.ref] = self.clock() + max(60.0, lane.settings.batch_poll)
            self._finish(lane, batch_id, "failed", f"the provider refused the batch: {exc}")
            report.returned += self.batches.return_untaken(batch_id)
            report.notes.append(f"batch {batch_id}: the provider refused it ({exc})")
            return batch_id
        if not self.batches.submitted(batch_id, created.id, created.expires_at, created.status):
            # a poller gave this batch up meanwhile (past the grace: its tasks went back to
            # pending): nobody will ingest it, so it is cancelled, not paid for twice
            log.warning("batch %d: given up while it was being created; cancelling", batch_id)
            with contextlib.suppress(ActorError):
                await client.cancel(created.id)
            return batch_id
        report.submitted[batch_id] = len(sent)
        log.info("batch %d: %d request(s) submitted as %s", batch_id, len(sent), created.id)
        return batch_id

    def _reserve(
        self,
        lane: Lane,
        key: str,
        *,
        requests: list[BatchRequest],
        items: list[NewItem],
        tasks: dict[int, TaskRow],
        report: BatchReport,
    ) -> tuple[list[BatchRequest], list[NewItem], str | None]:
        """Hold the batch's quotes (at the batch rate) in the period budgets of its
        workflows and actor, until the batch settles: the largest leading part of each
        workflow's requests that fits (halving) goes; the tasks of the rest are released
        (pending, attempt not counted) and the lane waits until the budget has room."""
        budgets = _period_budgets(lane.actor)
        if budgets is None or not budgets.budgets:
            return requests, items, None
        from turing.limits.spending import BudgetTooSmall, Held, PeriodBudgets

        holding = PeriodBudgets(
            self.store.db, budgets.budgets, holder=f"batch:{key}", hold_s=BUDGET_HOLD_S
        )
        quote = getattr(lane.actor, "quote", None)
        factor = lane.settings.batch_price_factor
        kept: list[tuple[BatchRequest, NewItem]] = []
        holds: list[dict[str, Any]] = []
        by_workflow: dict[str, list[tuple[BatchRequest, NewItem]]] = {}
        for request, item in zip(requests, items, strict=True):
            by_workflow.setdefault(tasks[item.task_id].workflow, []).append((request, item))
        for workflow, group in by_workflow.items():
            scopes = holding.for_call(workflow=workflow, actor=lane.settings.name or lane.ref)
            if not scopes:
                kept += group
                continue
            quotes = [quote(r.request) if quote is not None else Usage(calls=1) for r, _ in group]
            n, got, why = len(group), None, ""
            while n >= 1:
                total = sum(quotes[:n], Usage())
                try:
                    granted = holding.reserve(scopes, replace(total, cost=total.cost * factor))
                except BudgetTooSmall as exc:
                    granted, why = None, str(exc)
                if isinstance(granted, Held):
                    got = granted
                    break
                if granted is not None:
                    why = granted.message
                    self._refused_until[lane.ref] = granted.until
                n //= 2
            if got is None and self._refused_until.get(lane.ref, 0.0) <= self.clock():
                # not even one request fits (a quote larger than the budget): look again later
                self._refused_until[lane.ref] = self.clock() + max(60.0, lane.settings.batch_poll)
            if got is not None:
                kept += group[:n]
                parts = [[b.key, b.unit, start] for b, start, _ in got.parts]
                holds.append({"permit": got.permit, "workflow": workflow, "parts": parts})
            for _, item in group[n if got is not None else 0 :]:
                self.store.release(tasks[item.task_id], self.owner)
            if got is None or n < len(group):
                left = len(group) - (n if got is not None else 0)
                report.notes.append(
                    f"{left} task(s) of {workflow!r} wait for a period budget: {why}"
                )
        return [r for r, _ in kept], [i for _, i in kept], json.dumps(holds) if holds else None

    def _finish(self, lane: Lane, batch_id: int, status: str, error: str | None) -> bool:
        """End a batch; the one that ends it settles its budget holds at what its answers
        used (at the batch rate)."""
        if not self.batches.finish(batch_id, status, error):
            return False
        row = self.batches.get(batch_id)
        if row is not None and row.budget_hold:
            from turing.store.budgets import BudgetStore, Spend

            used = self.batches.usage(batch_id)  # workflow -> (input, output) tokens
            store = BudgetStore(self.store.db)
            for hold in json.loads(row.budget_hold):
                tokens_in, tokens_out = used.get(hold["workflow"], (0, 0))
                cost = lane.settings.batch_cost(tokens_in, tokens_out)
                spends = [
                    Spend(k, start, cost if unit == "USD" else float(tokens_in + tokens_out))
                    for k, unit, start in hold["parts"]
                ]
                store.settle(hold["permit"], spends)
        return True

    async def _run(self, lane: Lane, task: TaskRow, replay: ReplayActor) -> Completion:
        """The task run by the ordinary executor and processor, `lane`'s actor replayed."""
        base = self.executor

        def resolve(ref: str) -> Actor:
            return replay if ref == lane.ref else base.resolve(ref)

        executor = Executor(resolve, settings=base.settings, limits=base.limits)
        processor = Processor(
            self.registry, executor, self.store, owner=self.owner, lease_s=self.lease_s
        )
        return await processor.run_task(task)

    # -------------------------------------------------------------------- polling
    async def poll(self, *, force: bool = False, report: BatchReport | None = None) -> BatchReport:
        """Look at every open batch whose poll interval passed (all with `force`);
        ingest those that ended."""
        report = report if report is not None else BatchReport()
        for batch in self.batches.open():
            lane = self._lane(batch.actor)
            if lane is None:
                report.notes.append(
                    f"batch {batch.id}: actor {batch.actor!r} is not a batch "
                    "lane of this project; left for a worker that has it"
                )
                continue
            last = batch.polled_at or batch.submitted_at or batch.created_at
            if not force and self.clock() - last < lane.settings.batch_poll:
                continue
            try:
                await self._poll_one(lane, batch, report)
            except ActorError as exc:  # the provider is away: the batch waits for the next poll
                log.warning("batch %d: polling failed (%s)", batch.id, exc)
                report.notes.append(f"batch {batch.id}: polling failed ({exc}); tried again later")
        return report

    async def _poll_one(self, lane: Lane, batch: BatchRow, report: BatchReport) -> None:
        client = self._clients(lane.actor)
        report.polled += 1
        if batch.status == "submitting":
            if self.clock() - batch.created_at < SUBMIT_GRACE_S:
                return  # its submitter may still be at it
            found = await client.find(batch.idempotency_key)
            if found is None:
                self._finish(
                    lane,
                    batch.id,
                    "failed",
                    "not found at the provider: the "
                    "submitting worker stopped before it was created",
                )
                report.returned += self.batches.return_untaken(batch.id)
                report.finished[batch.id] = "failed"
                return
            self.batches.submitted(batch.id, found.id, found.expires_at, found.status)
            batch = replace(batch, provider_batch_id=found.id)
        assert batch.provider_batch_id is not None
        status = await client.retrieve(batch.provider_batch_id)
        self.batches.polled(batch.id, status.status, status.succeeded, status.errored)
        if status.ended:
            await self._ingest(lane, batch, status, client, report)

    async def _ingest(
        self,
        lane: Lane,
        batch: BatchRow,
        status: ProviderBatch,
        client: BatchClient,
        report: BatchReport,
    ) -> None:
        results = await client.results(status) if status.outcome != "failed" else {}
        while True:
            taken = self.batches.take(batch.id, self.owner, lease_s=self.lease_s, limit=self.chunk)
            if not taken:
                break
            await self._ingest_items(lane, batch.id, taken, results, report)
        report.returned += self.batches.return_untaken(batch.id)
        final = FINAL[status.outcome or "completed"]
        if self._finish(lane, batch.id, final, _why(status)):
            report.finished[batch.id] = final

    async def _ingest_items(
        self,
        lane: Lane,
        batch_id: int,
        taken: list[tuple[ItemRow, TaskRow]],
        results: dict[str, Result],
        report: BatchReport,
    ) -> None:
        done: list[tuple[ItemRow, Completion, Result]] = []
        for item, task in taken:
            result = results.get(item.custom_id)
            if result is None or (isinstance(result, Failure) and result.kind != "errored"):
                why = "no answer: the batch ended before it" if result is None else result.message
                self.batches.give_back(item, self.owner, "returned", why)
                report.returned += 1
                continue
            chain = self.batches.chain(task.id, task.attempts)
            late = lane.settings.batch_reask_deadline
            sync = lane.settings.batch_reask == "sync" or (
                late is not None and self.clock() - item.since >= late
            )
            answers = [*map(_replayed, chain), Replayed(item.request_hash, result)]
            replay = ReplayActor(
                lane.actor, answers, then="delegate" if sync else "capture", settings=lane.settings
            )
            completion = await self._run(lane, task, replay)
            if replay.stale:
                self.batches.drop_chain(task.id, task.attempts)
                self.batches.give_back(
                    item,
                    self.owner,
                    "stale",
                    "the request changed since submission (workflow edited): asked again",
                )
                report.returned += 1
                continue
            step = self._step_name(task)
            _own_attempts(completion.result, step, item.round, batch_id, keep_after=sync)
            if replay.captured is not None:  # still breaks the contract: the next batch
                entry = Entry(
                    completion.result,
                    self.owner,
                    task.id,
                    task.subject,
                    task.input,
                    status="deferred",
                    error=(
                        REASK_KIND,
                        f"answer of batch {batch_id} "
                        f"breaks the contract; re-asked in the next batch (round {item.round + 1})",
                    ),
                )
                if self.batches.reask(item, self.owner, _text(result), _tokens(result), entry):
                    report.reasked += 1
                continue
            done.append((item, completion, result))
        if not done:
            return
        outcomes = self.processor.complete([c for _, c, _ in done])
        for (item, completion, result), outcome in zip(done, outcomes, strict=True):
            self.batches.done_now(item, _text(result), _tokens(result))
            if report.on_result is not None:
                report.on_result(completion.task, completion.result, outcome)
            if completion.result.ok:
                report.succeeded += 1
            else:
                report.failed += 1

    def _step_name(self, task: TaskRow) -> str:
        wf = self.registry.get(task.workflow)
        return next(cs.name for cs in wf.steps if isinstance(cs.step, LLMStep))

    # ------------------------------------------------------------------- cancel
    async def cancel(self, batch_id: int) -> BatchReport:
        """Cancel at the provider, then ingest what finished; the rest returns to pending."""
        report = BatchReport()
        batch = self.batches.get(batch_id)
        if batch is None:
            raise TuringError(f"no batch {batch_id} (turing batches list shows them)")
        if batch.status not in ("submitting", "submitted"):
            raise TuringError(
                f"batch {batch_id} is {batch.status}: only an open batch can be cancelled"
            )
        lane = self._lane(batch.actor)
        if lane is None:
            raise TuringError(
                f"batch {batch_id}: actor {batch.actor!r} is not configured for "
                "batches in this project"
            )
        client = self._clients(lane.actor)
        if batch.provider_batch_id is None:
            found = await client.find(batch.idempotency_key)
            if found is None:
                self._finish(lane, batch_id, "cancelled", "cancelled before the provider had it")
                report.returned += self.batches.return_untaken(batch_id)
                report.finished[batch_id] = "cancelled"
                return report
            self.batches.submitted(batch_id, found.id, found.expires_at, found.status)
            batch = replace(batch, provider_batch_id=found.id)
        assert batch.provider_batch_id is not None
        status = await client.cancel(batch.provider_batch_id)
        while not status.ended:  # cancelling: the provider finishes what is in flight
            status = await client.retrieve(batch.provider_batch_id)
        self.batches.polled(batch_id, status.status, status.succeeded, status.errored)
        await self._ingest(lane, batch, replace(status, outcome="cancelled"), client, report)
        return report


def _period_budgets(actor: Any) -> Any:
    """The period budgets (`turing.limits.spending.PeriodBudgets`) an actor's calls spend
    from, under any wrappers (None: no budgets)."""
    while actor is not None:
        budgets = getattr(actor, "budgets", None)
        if budgets is not None:
            return budgets
        actor = getattr(actor, "inner", None)
    return None


def _replayed(item: ItemRow) -> Replayed:
    answer = Answer(item.answer or "", item.input_tokens, item.output_tokens)
    return Replayed(item.request_hash, answer)


def _text(result: Result) -> str | None:
    return result.text if isinstance(result, Answer) else None


def _tokens(result: Result) -> tuple[int, int]:
    return (result.input_tokens, result.output_tokens) if isinstance(result, Answer) else (0, 0)


def _why(status: ProviderBatch) -> str | None:
    if status.outcome in ("expired", "cancelled", "failed"):
        return f"the provider says {status.status}"
    return None


def _own_attempts(
    result: RunResult, step: str, current: int, batch_id: int, *, keep_after: bool
) -> None:
    """Keep only this round's calls: earlier rounds' answers were recorded with their
    round; the call that was captured for the next batch was never made. The round's
    answer names the batch (its cost is at the batch rate)."""
    kept = []
    for a in result.attempts:
        if a.step == step and a.number < current:
            continue
        if a.step == step and a.number > current and not keep_after:
            continue
        kept.append(replace(a, batch=batch_id) if a.step == step and a.number == current else a)
    result.attempts[:] = kept
