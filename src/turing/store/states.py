"""The words of the queue: a task's status and what completing a finished run did.

Both are `StrEnum`s, so they compare equal to the strings stored in the database and
printed in reports (`Outcome.SUCCEEDED == "succeeded"`), while code names them once.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """A queue row's status (the CHECK constraint of `turing_tasks.status`)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVIEW = "review"  # output held for a person's decision: its sink has not run
    SUBMITTED = "submitted"  # inside a provider batch: no worker claims it until ingested


# Open statuses: at most one task per workflow and subject is in one of these.
OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.REVIEW, TaskStatus.SUBMITTED)


class Outcome(StrEnum):
    """What completing one claimed task did.

    SUCCEEDED: output written by the sink, task done. FAILED: the run failed, task failed.
    RETRY: the run failed and is scheduled again (`not_before`). SINK: the sink raised, its
    writes were rolled back, task failed. LOST: the lease was gone, the result discarded
    and recorded, never written. DEFERRED: the database failed under the task; it is back
    to pending, its attempt not counted (never failed for a database fault). REVIEW: the
    output met the workflow's review condition: held, its sink not run until approved.
    """

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"
    SINK = "sink"
    LOST = "lost"
    DEFERRED = "deferred"
    REVIEW = "review"
