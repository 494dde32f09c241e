"""What people do to the queue (CLI and dashboard alike): decide held reviews, cancel,
requeue, pause and resume workflows; each action recorded in the audit log with who.

Every transition is one guarded statement on the status it leaves, in the transaction
that records the action: two reviewers approving one task at once approve it once (the
second finds it no longer in review), and an approved output's sink runs in the same
transaction that marks the task done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turing._json import canonical
from turing.store.db import Database, Row, Tx

# (tx, the task row approved: id, workflow, version, subject, input) -> None
ApprovedSink = Callable[[Tx, Mapping[str, Any]], None]


@dataclass(frozen=True)
class ReviewItem:
    """A task held for review: the validated output as held, and why."""

    task_id: int
    run_id: int | None
    workflow: str
    subject: str
    output: Any
    reason: str
    held_at: float
    version: int
    attempts: int
    input: Any = None  # only when read one at a time (`OpsStore.review`)

    @classmethod
    def of(cls, r: Row) -> ReviewItem:
        raw = r.get("input")
        return cls(
            int(r["task_id"]),
            None if r["run_id"] is None else int(r["run_id"]),
            r["workflow"],
            r["subject"],
            json.loads(r["output"]),
            r["reason"],
            float(r["held_at"]),
            int(r["version"]),
            int(r["attempts"]),
            None if raw is None else json.loads(raw),
        )


def _workflows(workflows: Sequence[str] | None) -> dict[str, Any]:
    return {"any_workflow": not workflows, "workflows": list(workflows or [])}


class OpsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ review
    def reviews(
        self, workflows: Sequence[str] | None = None, *, after: int = 0, limit: int = 50
    ) -> list[ReviewItem]:
        """Held tasks, oldest task first, from task id `after` (keyset pagination)."""
        with self.db.read() as tx:
            rows = tx.q("list_reviews", after=after, limit=limit, **_workflows(workflows))
        return [ReviewItem.of(r) for r in rows]

    def review(self, task_id: int) -> ReviewItem | None:
        """One held task (None: not held, or decided already)."""
        with self.db.read() as tx:
            row = tx.one("get_review", id=task_id)
        if row is None or row["status"] != "review":
            return None
        return ReviewItem.of(row)

    def approve(
        self,
        task_id: int,
        who: str,
        sink: ApprovedSink | None,
        *,
        detail: Mapping[str, Any],
    ) -> bool:
        """Mark the task done and run its sink in one transaction; False when it was not
        in review (decided by someone else meanwhile). A sink that raises rolls it all
        back: the task stays held and the error reaches the caller."""
        now = time.time()
        with self.db.tx() as tx:
            row = tx.one("approve_task", id=task_id, now=now)
            if row is None:
                return False
            if sink is not None:
                sink(tx, row)
            tx.x("drop_review", id=task_id)
            self._record(
                tx,
                who,
                "review.approve",
                workflow=row["workflow"],
                task_id=task_id,
                detail=detail,
                now=now,
            )
        return True

    def reject(self, task_id: int, who: str, reason: str, *, workflow: str) -> bool:
        """Fail the held task with the reviewer's reason."""
        error = f"review: rejected by {who}: {reason}"[:2000]
        return self._decide(
            task_id,
            who,
            "reject_task",
            {"error": error},
            workflow=workflow,
            detail={"reason": reason},
        )

    def reask(self, task_id: int, who: str, feedback: str, *, workflow: str, comment: str) -> bool:
        """Send the held task back to the model: pending, with the comment as feedback."""
        return self._decide(
            task_id,
            who,
            "reask_task",
            {"feedback": feedback},
            workflow=workflow,
            detail={"comment": comment},
        )

    def _decide(
        self,
        task_id: int,
        who: str,
        query: str,
        params: Mapping[str, Any],
        *,
        workflow: str,
        detail: Mapping[str, Any],
    ) -> bool:
        """A decision that moves the held task out of review (guarded), drops its review row
        and records it, in one transaction; False when it was no longer held."""
        now = time.time()
        action = "review." + query.removesuffix("_task")
        with self.db.tx() as tx:
            if tx.x(query, id=task_id, now=now, **params) != 1:
                return False
            tx.x("drop_review", id=task_id)
            self._record(
                tx, who, action, workflow=workflow, task_id=task_id, detail=detail, now=now
            )
        return True

    # ------------------------------------------------------------------ tasks
    def cancel(self, task_ids: Sequence[int], who: str, reason: str) -> list[int]:
        """Fail waiting tasks (pending, retry-waiting, held): the ids that were cancelled."""
        if not task_ids:
            return []
        now = time.time()
        error = f"cancelled by {who}" + (f": {reason}" if reason else "")
        with self.db.tx() as tx:
            rows = tx.q("cancel_tasks", ids=list(task_ids), error=error[:2000], now=now)
            tx.x("drop_reviews", ids=[r["id"] for r in rows])
            for r in rows:
                self._record(
                    tx,
                    who,
                    "cancel",
                    workflow=r["workflow"],
                    task_id=int(r["id"]),
                    detail={"reason": reason},
                    now=now,
                )
        return sorted(int(r["id"]) for r in rows)

    def requeue(self, task_id: int, data: Mapping[str, Any], who: str, *, workflow: str) -> bool:
        """Run a finished task again on `data` (its subject's current input)."""
        now = time.time()
        with self.db.tx() as tx:
            if tx.x("requeue_task", id=task_id, input=canonical(data), now=now) != 1:
                return False
            self._record(tx, who, "requeue", workflow=workflow, task_id=task_id, detail={}, now=now)
        return True

    # ------------------------------------------------------------------ workflows
    def pause(self, workflow: str, who: str, reason: str = "") -> bool:
        """No worker claims the workflow's tasks until it is resumed (False: paused already)."""
        now = time.time()
        with self.db.tx() as tx:
            if tx.x("pause_workflow", workflow=workflow, who=who, reason=reason, now=now) != 1:
                return False
            self._record(
                tx,
                who,
                "pause",
                workflow=workflow,
                task_id=None,
                detail={"reason": reason},
                now=now,
            )
        return True

    def resume(self, workflow: str, who: str) -> bool:
        now = time.time()
        with self.db.tx() as tx:
            if tx.x("resume_workflow", workflow=workflow) != 1:
                return False
            self._record(tx, who, "resume", workflow=workflow, task_id=None, detail={}, now=now)
        return True

    def paused(self) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q("list_paused")
        return rows

    # ------------------------------------------------------------------ audit
    def record(
        self,
        who: str,
        action: str,
        *,
        workflow: str | None = None,
        task_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """An action done elsewhere (a retry through the orchestrator) into the audit log."""
        with self.db.tx() as tx:
            self._record(
                tx,
                who,
                action,
                workflow=workflow,
                task_id=task_id,
                detail=detail or {},
                now=time.time(),
            )

    def actions(
        self, *, task_id: int | None = None, before: int | None = None, limit: int = 50
    ) -> list[Row]:
        """The audit log, newest first (`before`: an id, for the next page)."""
        with self.db.read() as tx:
            rows: list[Row] = tx.q(
                "list_actions", task_id=task_id, before=before or 2**62, limit=limit
            )
        return rows

    @staticmethod
    def _record(
        tx: Tx,
        who: str,
        action: str,
        *,
        workflow: str | None,
        task_id: int | None,
        detail: Mapping[str, Any],
        now: float,
    ) -> None:
        tx.x(
            "record_action",
            now=now,
            who=who,
            action=action,
            workflow=workflow,
            task_id=task_id,
            detail=canonical(dict(detail)),
        )
