"""Plan runs in the database: each executed plan, its steps' status and the tasks each step
took on, so a run's progress can be read back from the queue (the dashboard draws it)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turing._json import canonical
from turing.store.db import Database, Row


@dataclass(frozen=True)
class PlanStepRow:
    step: str
    workflow: str
    status: str
    tasks: int
    task_ids: list[int]
    reason: str | None


class PlanStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, goal: str, plan: Any, worker: str) -> int:
        with self.db.tx() as tx:
            row = tx.one(
                "start_plan_run", goal=goal, plan=canonical(plan), worker=worker, now=time.time()
            )
        assert row is not None
        return int(row["id"])

    def save_step(
        self,
        plan_run: int,
        *,
        step: str,
        workflow: str,
        status: str,
        tasks: int,
        task_ids: Sequence[int],
        reason: str | None,
    ) -> None:
        with self.db.tx() as tx:
            tx.x(
                "save_plan_step",
                plan_run=plan_run,
                step=step,
                workflow=workflow,
                status=status,
                tasks=tasks,
                task_ids=json.dumps(list(task_ids)),
                reason=reason,
                now=time.time(),
            )

    def finish(self, plan_run: int, status: str) -> None:
        with self.db.tx() as tx:
            tx.x("finish_plan_run", id=plan_run, status=status, now=time.time())

    def runs(self, limit: int = 50) -> list[Row]:
        """The newest plan runs first."""
        with self.db.read() as tx:
            rows: list[Row] = tx.q("list_plan_runs", limit=limit)
        return rows

    def run(self, plan_run: int) -> tuple[Row, list[PlanStepRow]] | None:
        with self.db.read() as tx:
            row = tx.one("get_plan_run", id=plan_run)
            if row is None:
                return None
            steps = tx.q("plan_run_steps", plan_run=plan_run)
        return row, [
            PlanStepRow(
                s["step"],
                s["workflow"],
                s["status"],
                int(s["tasks"]),
                [int(i) for i in json.loads(s["task_ids"])],
                s["reason"],
            )
            for s in steps
        ]

    def task_counts(self, task_ids: Sequence[int]) -> Counter[str]:
        """How many of these tasks are in each status now."""
        if not task_ids:
            return Counter()
        with self.db.read() as tx:
            rows = tx.q("task_states", ids=list(task_ids))
        return Counter(str(r["status"]) for r in rows)
