"""Reads for the dashboard's pages (`turing.dashboard`), typed, and the heartbeat's row of
each live process (`turing_workers`).

Task lists are keyset pages, newest first: a page ends at the smallest id it shows and the
next page starts below it (`id < before`), so page 10,000 costs what page 1 costs. Each
filter combination picks the named query whose index already walks in id order (see
`queries_browse.sql`); counts are never taken over filtered lists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from turing.store.db import Database, Row, Tx

STATUSES = ("pending", "running", "review", "submitted", "succeeded", "failed")
_FIRST = 2**62  # above every id: the first page
_TOP = "\U0010ffff"  # above every character: prefix + _TOP bounds the prefix's range
WORKER_ROWS_KEPT_S = 86_400.0  # a process that has not beaten for a day is forgotten


@dataclass(frozen=True)
class TaskFilter:
    """What the task list shows: every field optional; `reason` implies failed tasks."""

    workflow: str | None = None
    status: str | None = None
    reason: str | None = None  # a failed task's error kind, e.g. "output_invalid"
    since: float | None = None  # updated at or after (epoch seconds)
    subject: str | None = None  # subjects starting with this text

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r} (one of {', '.join(STATUSES)})")


@dataclass(frozen=True)
class TaskPage:
    rows: list[Row]
    next_before: int | None  # pass as `before` for the next page; None on the last one


@dataclass(frozen=True)
class Worker:
    """A process that beats (a `turing worker` or a `turing run`), or one only seen as the
    owner of running leases (it has not beaten yet, or ran before 0010)."""

    worker: str
    held: int
    beat_at: float | None
    lease_s: float | None
    started_at: float | None

    def age(self, now: float) -> float | None:
        return None if self.beat_at is None else max(0.0, now - self.beat_at)

    def live(self, now: float) -> bool:
        """Beat within its lease (a worker beats every third of it)."""
        if self.beat_at is None or self.lease_s is None:
            return self.held > 0
        return now - self.beat_at <= self.lease_s


@dataclass(frozen=True)
class Window:
    """Runs finished since a point: how many by status, and what they cost."""

    by_status: dict[str, int] = field(default_factory=dict)
    cost: float = 0.0

    @property
    def finished(self) -> int:
        return sum(self.by_status.values())

    @property
    def failed(self) -> int:
        return self.by_status.get("failed", 0)

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    workflow: str
    n: int
    latest: float
    last_id: int
    sample: str


@dataclass(frozen=True)
class CostBucket:
    start: float
    runs: int
    failed: int
    cost: float


class BrowseStore:
    """The dashboard's reads; every method is one short read transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ----------------------------------------------------------------- overview
    def queue(self) -> dict[str, dict[str, int]]:
        """workflow -> status -> tasks."""
        out: dict[str, dict[str, int]] = {}
        with self.db.read() as tx:
            for r in tx.q("queue_counts"):
                out.setdefault(r["workflow"], {})[r["status"]] = int(r["n"])
        return out

    def window(self, since: float) -> Window:
        with self.db.read() as tx:
            rows = tx.q("browse_runs_since", since=since)
        return Window(
            {r["status"]: int(r["n"]) for r in rows}, sum(float(r["cost"] or 0) for r in rows)
        )

    def workers(self) -> list[Worker]:
        """Processes that beat, and owners of running leases, by name."""
        with self.db.read() as tx:
            beats = {r["worker"]: r for r in tx.q("browse_workers")}
            owners = {r["worker"]: int(r["held"]) for r in tx.q("browse_lease_owners")}
        out = []
        for name in sorted(set(beats) | {o for o in owners if o}):
            b = beats.get(name)
            out.append(
                Worker(
                    name,
                    owners.get(name, 0),
                    None if b is None else float(b["beat_at"]),
                    None if b is None else float(b["lease_s"]),
                    None if b is None else float(b["started_at"]),
                )
            )
        return out

    def paused(self) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q("browse_paused")
        return rows

    def limits_in_use(self, now: float) -> dict[str, dict[str, float]]:
        """Shared limit key -> {"slots": held now, "grants": granted in the last minute,
        "granted": their amount}."""
        out: dict[str, dict[str, float]] = {}
        with self.db.read() as tx:
            for r in tx.q("browse_limit_slots", now=now):
                out.setdefault(r["key"], {})["slots"] = int(r["n"])
            for r in tx.q("browse_limit_grants", since=now - 60):
                entry = out.setdefault(r["key"], {})
                entry["grants"] = int(r["n"])
                entry["granted"] = float(r["amount"] or 0)
        return out

    def budgets(self, now: float) -> list[Row]:
        """Each budget key's newest period: spent, and held by calls in flight."""
        with self.db.read() as tx:
            rows = tx.q("browse_budgets", now=now)
        return [r | {"spent": float(r["spent"] or 0), "held": float(r["held"] or 0)} for r in rows]

    # -------------------------------------------------------------------- tasks
    def tasks(self, f: TaskFilter, *, before: int | None = None, limit: int = 50) -> TaskPage:
        """One page of tasks matching `f`, newest first, below id `before`."""
        status = "failed" if f.reason else f.status
        params: dict[str, Any] = {
            "before": before if before is not None else _FIRST,
            "limit": limit + 1,  # one more tells whether a next page exists
            "any_reason": not f.reason,
            "reason": f.reason or "",
            "reason_like": f"{_like_escape(f.reason or '')}:%",
            "any_since": f.since is None,
            "since": float(f.since or 0.0),
            "workflow": f.workflow or "",
            "status": status or "",
        }
        with self.db.read() as tx:
            if f.subject:
                query = "browse_tasks_subject"
                params |= {
                    "subject_lo": f.subject,
                    "subject_hi": f.subject + _TOP,
                    "any_workflow": not f.workflow,
                    "any_status": not status,
                }
            elif f.workflow and status:
                query = "browse_tasks_workflow_status"
            elif f.workflow:
                query = "browse_tasks_workflow"
            elif status:
                query = "browse_tasks_status"
            else:
                query = "browse_tasks"
            rows = tx.q(query, **params)
        more = len(rows) > limit
        rows = rows[:limit]
        return TaskPage(rows, int(rows[-1]["id"]) if more else None)

    def task_ids(self, f: TaskFilter, *, batch: int = 500) -> list[int]:
        """Every id matching `f`, newest first, read page by page (bulk actions)."""
        ids: list[int] = []
        before: int | None = None
        while True:
            page = self.tasks(f, before=before, limit=batch)
            ids += [int(r["id"]) for r in page.rows]
            if page.next_before is None:
                return ids
            before = page.next_before

    def task(self, task_id: int) -> Row | None:
        with self.db.read() as tx:
            row: Row | None = tx.one("get_task", id=task_id)
        return row

    def task_runs(self, task_id: int, limit: int = 100) -> list[Row]:
        with self.db.read() as tx:
            rows: list[Row] = tx.q("browse_task_runs", task_id=task_id, limit=limit)
        return rows

    # ----------------------------------------------------------------- failures
    def failures(self) -> list[FailureGroup]:
        """Failed tasks grouped by reason and workflow, largest group first, each with the
        newest task's error as a sample."""
        with self.db.read() as tx:
            groups = tx.q("browse_failure_reasons")
            ids = [int(g["last_id"]) for g in groups]
            samples = {int(r["id"]): r["last_error"] or "" for r in _errors(tx, ids)}
        return [
            FailureGroup(
                str(g["reason"]),
                str(g["workflow"]),
                int(g["n"]),
                float(g["latest"]),
                int(g["last_id"]),
                samples.get(int(g["last_id"]), ""),
            )
            for g in groups
        ]

    # ------------------------------------------------------------------- charts
    def latencies(self, since: float) -> dict[tuple[str, str], list[float]]:
        """(workflow, step) -> call latencies (ms) of runs finished since `since`."""
        out: dict[tuple[str, str], list[float]] = {}
        with self.db.read() as tx:
            for r in tx.q("browse_latencies", since=since):
                out.setdefault((r["workflow"], r["step"]), []).append(float(r["latency_ms"]))
        return out

    def cost_buckets(self, since: float, bucket_s: float) -> list[CostBucket]:
        with self.db.read() as tx:
            rows = tx.q("browse_cost_buckets", since=since, bucket_s=bucket_s)
        return [
            CostBucket(
                float(r["bucket"]) * bucket_s,
                int(r["n"]),
                int(r["failed"] or 0),
                float(r["cost"] or 0),
            )
            for r in rows
        ]


class WorkerBeats:
    """The heartbeat's row per process: written with each lease extension."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def beat(self, worker: str, lease_s: float, held: int, now: float | None = None) -> None:
        at = time.time() if now is None else now
        self.tx.x("beat_worker", worker=worker, now=at, lease_s=lease_s, held=held)
        self.tx.x("prune_workers", stale=at - WORKER_ROWS_KEPT_S)

    def forget(self, worker: str) -> None:
        self.tx.x("forget_worker", worker=worker)


def _errors(tx: Tx, ids: Sequence[int]) -> list[Row]:
    return tx.q("browse_task_errors", ids=list(ids)) if ids else []


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
