"""Turing's own tables: registry sync, the task queue, and run history.

Every queue transition is guarded by status and lease owner (`WHERE status = 'running' AND
lease_owner = :owner`), so a worker that lost its lease can never overwrite a result, and
a sink runs inside the same transaction as the completion it belongs to.

Claims read the database's clock inside their transaction (a claim that waited never
commits an expired lease) and skip rows other transactions hold (a frozen worker's row
never stalls the others); statements that touch other workers' rows run under a lock
timeout. A transient database fault surfaces as `StoreError` (see `store.db`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turing._json import canonical
from turing.result import ErrorKind, RunResult
from turing.store.db import Database, Row, Tx, connect, is_transient
from turing.store.history import Entry, record, record_many
from turing.store.migrations import migrate
from turing.store.states import Outcome


@dataclass(frozen=True)
class TaskRow:
    id: int
    workflow: str
    version: int
    subject: str
    input: dict[str, Any]
    attempts: int
    priority: int
    feedback: str | None = None  # a reviewer sent the last answer back: JSON, see ops


@dataclass(frozen=True)
class Completion:
    """A finished run of a claimed task, with the sink that stores its output."""

    task: TaskRow
    result: RunResult
    sink: Callable[[Tx], None] | None = None
    retry_at: float | None = None  # a failed run is tried again from then (not_before)
    hold: str | None = None  # the output met the workflow's review condition: why

    @property
    def deferrable(self) -> bool:
        """The run did not fail on its own account: Turing's database failed (cache, shared
        limits), the batch's budget (or a period budget) had no room for its next call, or
        the model host's circuit is open. The task goes back to pending with its attempt
        not counted."""
        errors = self.result.errors
        return not self.result.ok and bool(errors) and errors[0].kind in DEFERRED_KINDS


# Error kinds that defer a task instead of failing it, and how long until it is claimable.
# An open circuit defers at once: this process stops claiming, and another (or the next run)
# has its own circuit and tries the host itself.
DEFERRED_KINDS = {
    ErrorKind.STORE.value: 5.0,
    ErrorKind.BUDGET_STOP.value: 0.0,
    ErrorKind.CIRCUIT_OPEN.value: 0.0,
    ErrorKind.BUDGET_WAIT.value: 0.0,  # until the error's retry_after (the budget says when)
}
STORE_FAULT_DELAY_S = DEFERRED_KINDS[ErrorKind.STORE.value]


@dataclass(frozen=True)
class QueueOverview:
    """What the queue holds for some workflows, read at `now` (the database's clock)."""

    now: float
    pending: int  # claimable now
    waiting_retry: int  # pending, but not before a retry time
    running: int  # held under a live lease (another process, or this one)
    expired: int  # running, lease run out: claimable by the next claim
    failed: int
    succeeded: int
    next_retry_at: float | None
    last_lease_expiry: float | None
    review: int = 0  # held for a reviewer
    submitted: int = 0  # inside a provider batch


@dataclass(frozen=True)
class SyncChange:
    workflow: str
    action: str  # "created", "updated", "unchanged"
    contracts: tuple[str, ...]  # roles that got a new revision
    version: int


ANALYZE_AFTER = 1000  # enqueued rows after which the queue's statistics are refreshed
LOCK_TIMEOUT = "2s"  # the longest a claim or retry waits on a row another worker holds


def _filter(workflows: Sequence[str] | None) -> dict[str, Any]:
    return {"any_workflow": not workflows, "workflows": list(workflows or [])}


class Store:
    def __init__(
        self,
        db: Database,
        *,
        auto_migrate: bool = True,
        before_claim: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self._before_claim = before_claim  # a test seam: delay a claim inside its transaction
        if auto_migrate:
            migrate(db)

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ registry
    def sync_workflow(self, description: Mapping[str, Any], fingerprint: str) -> SyncChange:
        """Write a workflow; a contract gets a new revision only when its hash changed."""
        name = str(description["name"])
        now = time.time()
        new_roles = []
        with self.db.tx() as tx:
            old = tx.one("get_workflow", name=name)
            for role in ("input", "output"):
                schema = description[role]
                digest = description[f"{role}_hash"]
                latest = tx.one("latest_contract", workflow=name, role=role)
                if latest is None or latest["hash"] != digest:
                    revision = (latest["revision"] + 1) if latest else 1
                    tx.x(
                        "insert_contract",
                        workflow=name,
                        role=role,
                        revision=revision,
                        version=description["version"],
                        hash=digest,
                        schema=canonical(schema),
                        now=now,
                    )
                    new_roles.append(role)
            definition = canonical(description)
            same = old is not None and old["fingerprint"] == fingerprint
            if same and old is not None and old["definition"] == definition and not new_roles:
                return SyncChange(name, "unchanged", (), int(old["version"]))
            tx.x(
                "upsert_workflow",
                name=name,
                alias=description.get("alias"),
                description=description.get("description", ""),
                version=description["version"],
                fingerprint=fingerprint,
                definition=definition,
                now=now,
            )
        return SyncChange(
            name,
            "created" if old is None else "updated",
            tuple(new_roles),
            int(description["version"]),
        )

    def registry(self) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q("list_registry")
        return rows

    def contracts(self) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q("list_contracts")
        return rows

    # --------------------------------------------------------------------- queue
    def enqueue(
        self,
        workflow: str,
        version: int,
        items: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        priority: int = 0,
        reprocess: bool = False,
        batch: int = 1000,
    ) -> int:
        """Add tasks for subjects that have none yet (idempotent); return how many were new."""
        bulk = "enqueue_tasks_reprocess" if reprocess else "enqueue_tasks"
        single = "enqueue_task_reprocess" if reprocess else "enqueue_task"
        added = 0
        chunk: list[tuple[str, Mapping[str, Any]]] = []

        def flush() -> None:
            nonlocal added
            now = time.time()
            inputs = [json.dumps(data, default=str) for _, data in chunk]
            with self.db.tx() as tx:
                if tx.dialect == "sqlite":  # in-process: many small statements are cheapest
                    rows = [
                        {"workflow": workflow, "version": version, "subject": subject}
                        | {"input": text, "priority": priority, "now": now}
                        for (subject, _), text in zip(chunk, inputs, strict=True)
                    ]
                    added += tx.many(single, rows)
                else:  # one statement per chunk: round trips dominate over a network
                    added += tx.x(
                        bulk,
                        workflow=workflow,
                        version=version,
                        subjects=[subject for subject, _ in chunk],
                        inputs=inputs,
                        priority=priority,
                        now=now,
                    )
            chunk.clear()

        for item in items:
            chunk.append(item)
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        if added >= ANALYZE_AFTER:
            # Fresh statistics, or the planner may sort every pending task on each claim
            # instead of walking the claim index (seen on PostgreSQL after bulk enqueues).
            with self.db.tx() as tx:
                tx.x("analyze_tasks")
        return added

    def claim(
        self,
        owner: str,
        limit: int,
        *,
        workflows: Sequence[str] | None = None,
        lease_s: float = 600,
        task_ids: Sequence[int] | None = None,
        on_reclaimed: Callable[[int], None] | None = None,
    ) -> list[TaskRow]:
        """Atomically take up to `limit` pending tasks (expired leases are reclaimed first,
        and `on_reclaimed` told how many once committed); with `task_ids`, only those (a
        plan step claims its own tasks). The lease runs from the database's clock read
        inside the transaction, so however long the claim waited (pool, lock, a paused
        process), it commits a lease of `lease_s` from now."""
        with self.db.tx() as tx:
            tx.one("set_lock_timeout", timeout=LOCK_TIMEOUT)
            if self._before_claim is not None:
                self._before_claim()
            now = self.now(tx)
            lease = {"owner": owner, "lease_until": now + lease_s, "now": now, "limit": limit}
            reclaimed = tx.x("reclaim_expired", now=now)
            if task_ids is not None:
                rows = tx.q("claim_task_ids", ids=list(task_ids), **lease)
            else:
                rows = tx.q("claim_tasks", **lease, **_filter(workflows))
        if reclaimed > 0 and on_reclaimed is not None:
            on_reclaimed(reclaimed)
        rows.sort(key=lambda r: (-r["priority"], r["id"]))
        return [_task(r) for r in rows]

    @staticmethod
    def now(tx: Tx) -> float:
        """The database's clock (epoch seconds), read in `tx`."""
        row = tx.one("db_now")
        assert row is not None
        return float(row["now"])

    def complete(
        self,
        task: TaskRow,
        owner: str,
        result: RunResult,
        *,
        sink: Callable[[Tx], None] | None = None,
        worker: str,
    ) -> Outcome:
        """Finish one claimed task in its own transaction (see `complete_many`)."""
        return self.complete_many([Completion(task, result, sink)], owner, worker=worker)[0]

    def complete_many(
        self, items: Sequence[Completion], owner: str, *, worker: str
    ) -> list[Outcome]:
        """Finish claimed tasks in one transaction (a group commit): one guarded UPDATE for
        the batch, each sink once, history in bulk (`Outcome` says what each got).

        If a sink raises, the whole transaction is rolled back and done again with a
        savepoint per task, so the failing sink fails only its own task: the sinks of the
        others then run a second time (their first writes were rolled back; a callable
        sink's effects outside the transaction happen twice). A transient database fault
        raises `StoreError` with nothing committed; the caller may complete again.
        """
        if not items:
            return []
        try:
            with self.db.tx() as tx:
                return self._complete_fast(tx, items, owner, worker)
        except _SlowPath as slow:  # a sink raised: all rolled back; again, a savepoint each
            refused = slow.refused
        with self.db.tx() as tx:
            return [
                self._complete_in(tx, item, owner, worker, refused.get(item.task.id))
                for item in items
            ]

    def _complete_fast(
        self, tx: Tx, items: Sequence[Completion], owner: str, worker: str
    ) -> list[Outcome]:
        """The common case in few statements: one guarded UPDATE for the batch, the sinks,
        one bulk history insert. Any sink error abandons it for the savepoint path."""
        ok_ids = [i.task.id for i in items if i.result.ok and i.hold is None]
        now = time.time()
        won = (
            {int(r["id"]) for r in tx.q("complete_tasks", ids=ok_ids, owner=owner, now=now)}
            if ok_ids
            else set()
        )
        outcomes: list[Outcome] = []
        entries: list[Entry] = []
        winners: list[Completion] = []
        for item in items:
            task, result = item.task, item.result
            if not result.ok:
                outcomes.append(self._fail_in(tx, item, owner, worker, None))
            elif item.hold is not None:
                outcomes.append(self._hold_in(tx, item, owner, worker))
            elif task.id not in won:
                self._discard(tx, task, result, worker)
                outcomes.append(Outcome.LOST)
            else:
                winners.append(item)
                entries.append(_entry(task, result, worker))
                outcomes.append(Outcome.SUCCEEDED)
        current: Completion | None = None
        try:
            with tx.pipeline():  # PostgreSQL: the sinks' statements go out without waiting
                for item in winners:
                    if item.sink is not None:
                        current = item
                        item.sink(tx)
                current = None
                record_many(tx, entries)
        except Exception as exc:
            if is_transient(exc):  # the database, not a sink: nothing to redo task by task
                raise
            refused = {}
            if current is not None and not _database_error(exc):
                # the sink's own code refused (not a statement whose error may surface late
                # in a pipeline): it fails as it is, without being called a second time
                refused[current.task.id] = f"sink failed: {type(exc).__name__}: {exc}"
            raise _SlowPath(refused) from exc
        return outcomes

    def _complete_in(
        self, tx: Tx, item: Completion, owner: str, worker: str, refused: str | None = None
    ) -> Outcome:
        task, result = item.task, item.result
        if not result.ok:
            return self._fail_in(tx, item, owner, worker, None)
        if refused is not None:
            return self._fail_in(tx, item, owner, worker, refused)
        if item.hold is not None:
            return self._hold_in(tx, item, owner, worker)
        try:
            with tx.savepoint():
                if tx.x("complete_task", id=task.id, owner=owner, now=time.time()) != 1:
                    raise _LeaseLost
                if item.sink is not None:
                    item.sink(tx)
                record(tx, _entry(task, result, worker))
            return Outcome.SUCCEEDED
        except _LeaseLost:
            self._discard(tx, task, result, worker)
            return Outcome.LOST
        except Exception as exc:  # the sink raised: nothing of it stays
            if is_transient(exc):  # ... unless the database failed: complete again later
                raise
            return self._fail_in(
                tx, item, owner, worker, f"sink failed: {type(exc).__name__}: {exc}"
            )

    def _fail_in(
        self, tx: Tx, item: Completion, owner: str, worker: str, sink_error: str | None
    ) -> Outcome:
        task, result = item.task, item.result
        kind = "sink" if sink_error else (result.errors[0].kind if result.errors else "unknown")
        # each text says its kind once: history has a kind column (the text leaves it out),
        # the task's last error has none (the text starts with it)
        text = (
            sink_error.removeprefix("sink failed: ")
            if sink_error
            else "; ".join(e.message if e.kind == kind else f"{e.kind}: {e.message}"
                           for e in result.errors)
        )  # fmt: skip
        error = f"{kind}: {text}"
        now = time.time()
        history = _entry(task, result, worker, status="failed", error=(kind, text))
        guarded = {"error": error[:2000], "now": now}
        if item.deferrable and not sink_error:
            first = result.errors[0]
            delay = DEFERRED_KINDS[first.kind]
            if first.kind == ErrorKind.BUDGET_WAIT and first.retry_after is not None:
                delay = first.retry_after  # the period's end, or a recheck
            guarded["not_before"] = now + delay
            return self._move(
                tx,
                item,
                owner,
                "defer_task",
                params=guarded,
                history=history,
                outcome=Outcome.DEFERRED,
            )
        if item.retry_at is not None and not sink_error:
            guarded["not_before"] = item.retry_at
            return self._move(
                tx,
                item,
                owner,
                "retry_later",
                params=guarded,
                history=history,
                outcome=Outcome.RETRY,
            )
        done = Outcome.SINK if sink_error else Outcome.FAILED
        return self._move(
            tx, item, owner, "fail_task", params=guarded, history=history, outcome=done
        )

    def _move(
        self,
        tx: Tx,
        item: Completion,
        owner: str,
        query: str,
        *,
        params: Mapping[str, Any],
        history: Entry,
        outcome: Outcome,
    ) -> Outcome:
        """One transition of a claimed task, guarded by status and owner, with its run
        recorded; if the lease was gone, the result is recorded as discarded instead."""
        if tx.x(query, id=item.task.id, owner=owner, **params) != 1:
            self._discard(tx, item.task, item.result, history.worker)
            return Outcome.LOST
        record(tx, history)
        return outcome

    def _hold_in(self, tx: Tx, item: Completion, owner: str, worker: str) -> Outcome:
        """Hold a valid output for a reviewer: the task waits in `review` with its output
        stored, its sink not run (it runs when a reviewer approves; see `store.ops.OpsStore`)."""
        task, reason, now = item.task, item.hold or "", time.time()
        if tx.x("hold_task", id=task.id, owner=owner, now=now) != 1:
            self._discard(tx, task, item.result, worker)
            return Outcome.LOST
        run_id = record(tx, _entry(task, item.result, worker, status="review"))
        tx.x(
            "put_review",
            task_id=task.id,
            run_id=run_id,
            workflow=task.workflow,
            subject=task.subject,
            output=canonical(item.result.output),
            reason=reason[:2000],
            now=now,
        )
        return Outcome.REVIEW

    def _discard(self, tx: Tx, task: TaskRow, result: RunResult, worker: str) -> None:
        lost = ("lease_lost", "lease lost: result discarded")
        record(tx, _entry(task, result, worker, status="discarded", error=lost))

    def release(self, task: TaskRow, owner: str) -> bool:
        with self.db.tx() as tx:
            n: int = tx.x("release_task", id=task.id, owner=owner, now=time.time())
        return n == 1

    def defer(self, item: Completion, owner: str, worker: str, reason: str) -> Outcome:
        """Give a finished task back because the database failed while completing it: the
        task is pending again (attempt not counted), its result recorded in history as
        deferred for a store fault, so the answer is not lost from the record."""
        now = time.time()
        history = _entry(
            item.task, item.result, worker, status="deferred", error=(ErrorKind.STORE, reason)
        )
        guarded = {"error": reason[:2000], "now": now, "not_before": now + STORE_FAULT_DELAY_S}
        with self.db.tx() as tx:
            return self._move(
                tx,
                item,
                owner,
                "defer_task",
                params=guarded,
                history=history,
                outcome=Outcome.DEFERRED,
            )

    def retry(self, task_id: int) -> bool:
        with self.db.tx() as tx:
            tx.one("set_lock_timeout", timeout=LOCK_TIMEOUT)
            n: int = tx.x("retry_task", id=task_id, now=time.time())
        return n == 1

    def retry_failed(self, workflows: Sequence[str] | None = None) -> int:
        with self.db.tx() as tx:
            tx.one("set_lock_timeout", timeout=LOCK_TIMEOUT)
            n: int = tx.x("retry_failed", now=time.time(), **_filter(workflows))
        return n

    def retryable_failed(
        self, workflows: Sequence[str] | None = None, task_id: int | None = None
    ) -> list[TaskRow]:
        """Failed tasks that may be requeued (each its subject's newest, none open)."""
        with self.db.read() as tx:
            rows = tx.q(
                "retryable_failed",
                any_id=task_id is None,
                id=task_id if task_id is not None else 0,
                **_filter(workflows),
            )
        return [_task(r) for r in rows]

    def requeue_failed(self, task_id: int, data: Mapping[str, Any]) -> bool:
        """A failed task back to pending with `data` as its input."""
        with self.db.tx() as tx:
            tx.one("set_lock_timeout", timeout=LOCK_TIMEOUT)
            n: int = tx.x(
                "requeue_failed", id=task_id, input=json.dumps(data, default=str),
                now=time.time(),
            )  # fmt: skip
        return n == 1

    def drop_failed(self, task_id: int) -> bool:
        with self.db.tx() as tx:
            n: int = tx.x("drop_failed", id=task_id)
        return n == 1

    def preview(self, workflow: str, limit: int) -> tuple[list[TaskRow], set[str]]:
        """Read-only: a workflow's pending tasks and every subject it has a task for."""
        with self.db.read() as tx:
            rows = tx.q("pending_tasks", workflow=workflow, limit=limit)
            subjects = {r["subject"] for r in tx.q("task_subjects", workflow=workflow)}
        return [_task(r) for r in rows], subjects

    def tasks_for_subjects(self, workflow: str, subjects: Sequence[str]) -> list[Row]:
        """Every task of `workflow` for these subjects (id order: the last is the newest)."""
        with self.db.read() as tx:
            rows: list[Row] = tx.q("tasks_for_subjects", workflow=workflow, subjects=list(subjects))
        return rows

    def task_states(self, task_ids: Sequence[int]) -> list[Row]:
        """id, subject, status, not_before and last_error of these tasks."""
        with self.db.read() as tx:
            rows: list[Row] = tx.q("task_states", ids=list(task_ids))
        return rows

    def task(self, task_id: int) -> Row | None:
        with self.db.read() as tx:
            row: Row | None = tx.one("get_task", id=task_id)
        return row

    def queue_overview(self, workflows: Sequence[str] | None = None) -> QueueOverview:
        with self.db.read() as tx:
            now = self.now(tx)
            row = tx.one("queue_overview", now=now, **_filter(workflows))
        assert row is not None
        counts = {k: int(row[k] or 0) for k in ("pending", "waiting_retry", "running")}
        counts |= {k: int(row[k] or 0) for k in ("expired", "failed", "succeeded")}
        counts |= {k: int(row[k] or 0) for k in ("review", "submitted")}
        retry, expiry = row["next_retry_at"], row["last_lease_expiry"]
        return QueueOverview(
            now,
            **counts,
            next_retry_at=float(retry) if retry is not None else None,
            last_lease_expiry=float(expiry) if expiry is not None else None,
        )

    def queue_counts(self) -> dict[str, dict[str, int]]:
        with self.db.read() as tx:
            rows = tx.q("queue_counts")
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["workflow"], {})[r["status"]] = int(r["n"])
        return out

    # --------------------------------------------------------------------- cache
    def cache_get(self, key: str) -> Row | None:
        """A cached response (and counts the hit), or None."""
        with self.db.tx() as tx:
            row: Row | None = tx.one("cache_get", key=key)
            if row is not None:
                tx.x("cache_hit", key=key, now=time.time())
        return row

    def cache_peek(self, key: str) -> Row | None:
        """Read-only lookup (dry runs must not even count hits)."""
        with self.db.read() as tx:
            row: Row | None = tx.one("cache_get", key=key)
        return row

    def cache_put(
        self,
        key: str,
        *,
        actor: str,
        model: str,
        response: str,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        with self.db.tx() as tx:
            tx.x(
                "cache_put",
                key=key,
                actor=actor,
                model=model,
                response=response,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                now=time.time(),
            )

    # ------------------------------------------------------------------- history
    def record_run(
        self,
        result: RunResult,
        worker: str,
        *,
        data: Mapping[str, Any],
        subject: str | None = None,
    ) -> int:
        """History of a run that had no task (`turing exec`, chains)."""
        with self.db.tx() as tx:
            return record(tx, Entry(result, worker, subject=subject, data=data))

    def runs(
        self, *, workflows: Sequence[str] | None = None, failed_only: bool = False, limit: int = 50
    ) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q(
                "list_runs", failed_only=failed_only, limit=limit, **_filter(workflows)
            )
        return rows

    def run(self, run_id: int) -> Row | None:
        with self.db.read() as tx:
            row = tx.one("get_run", id=run_id)
            if row is None:
                return None
            row = dict(row)
            row["calls_detail"] = tx.q("run_calls", run_id=run_id)
            row["repairs_detail"] = tx.q("run_repairs", run_id=run_id)
        return row


def _task(r: Row) -> TaskRow:
    return TaskRow(
        r["id"],
        r["workflow"],
        r["version"],
        r["subject"],
        json.loads(r["input"]),
        r["attempts"],
        r["priority"],
        r.get("feedback"),
    )


def _entry(
    task: TaskRow,
    result: RunResult,
    worker: str,
    *,
    status: str | None = None,
    error: tuple[str, str] | None = None,
) -> Entry:
    return Entry(result, worker, task.id, task.subject, task.input, status=status, error=error)


class _SlowPath(Exception):
    def __init__(self, refused: dict[int, str]) -> None:
        super().__init__("a sink raised")
        self.refused = refused  # task id -> the error of the sink that raised


def _database_error(exc: BaseException) -> bool:
    """A driver error (a statement failed): in a pipeline it may belong to an earlier sink."""
    module = type(exc).__module__
    return isinstance(exc, sqlite3.Error) or module.startswith("psycopg")


class _LeaseLost(Exception):
    pass


def open_store(url: str, *, pool_size: int = 4) -> Store:
    return Store(connect(url, pool_size=pool_size))
