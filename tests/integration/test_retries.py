"""Persisted retries on both backends: a failed run goes back to the queue with not_before,
survives a restart, and becomes a dead letter after the last attempt."""

from __future__ import annotations

import time
from typing import Any

from integration.domain import Calls, add_items, count_words, orchestrator, rows
from turing import RetryPolicy
from turing.store import Store
from turing.store.store import open_store


def flaky_workflow(calls: Calls, policy: RetryPolicy) -> Any:
    wf = count_words(calls)
    wf.retry = policy
    return wf


def test_failed_run_is_scheduled_persisted_and_retried_after_a_restart(
    domain: Store, calls: Calls
) -> None:
    calls.fail_ids = {3}
    policy = RetryPolicy(
        max_attempts=3, backoff_s=0.2, jitter=0.0, retry_on=frozenset({"script_crash"})
    )
    report = orchestrator(domain, flaky_workflow(calls, policy)).process_pending_tasks()
    assert report.succeeded == 9 and report.per_workflow["count_words"].retrying == 1
    assert report.failures == {"script_crash (retry scheduled)": 1}
    [task] = rows(
        domain,
        "SELECT status, attempts, not_before, updated_at, last_error FROM turing_tasks "
        "WHERE subject = '3'",
    )
    assert task["status"] == "pending" and task["attempts"] == 1
    # scheduled a backoff after it failed (the committed times, not the wall clock now)
    assert task["not_before"] >= task["updated_at"] + 0.2 - 0.05
    assert "cannot count item 3" in task["last_error"]

    # "restart": a new connection and orchestrator; the schedule is in the database
    fresh = open_store(domain.db.url)
    try:
        calls.fail_ids = set()
        early = orchestrator(fresh, flaky_workflow(calls, policy)).process_pending_tasks(
            discover=False
        )
        assert early.processed == 0  # not before its time
        time.sleep(0.25)
        later = orchestrator(fresh, flaky_workflow(calls, policy)).process_pending_tasks(
            discover=False
        )
        assert later.succeeded == 1
    finally:
        fresh.close()
    [task] = rows(domain, "SELECT status, attempts FROM turing_tasks WHERE subject = '3'")
    assert (task["status"], task["attempts"]) == ("succeeded", 2)


def test_after_the_last_attempt_the_task_is_a_dead_letter(domain: Store, calls: Calls) -> None:
    add_items(domain, range(11, 12))
    calls.fail_ids = {11}
    policy = RetryPolicy(
        max_attempts=2, backoff_s=0.0, jitter=0.0, retry_on=frozenset({"script_crash"})
    )
    wf = flaky_workflow(calls, policy)
    # no backoff: the second attempt comes in the same batch, and it is the last one
    report = orchestrator(domain, wf).process_pending_tasks()
    assert report.per_workflow["count_words"].retrying == 1
    assert report.failed == 1
    assert report.failures == {"script_crash (retry scheduled)": 1, "script_crash": 1}
    [task] = rows(domain, "SELECT status, attempts FROM turing_tasks WHERE subject = '11'")
    assert (task["status"], task["attempts"]) == ("failed", 2)
    assert len(rows(domain, "SELECT id FROM turing_runs WHERE subject = '11'")) == 2
    assert domain.retry_failed() == 1  # `turing retry` requeues the dead letter
    calls.fail_ids = set()
    assert orchestrator(domain, wf).process_pending_tasks(discover=False).succeeded == 1


def test_permanent_errors_are_not_retried(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {2}
    report = orchestrator(domain, count_words(calls)).process_pending_tasks()  # default policy
    assert report.failed == 1 and report.failures == {"script_crash": 1}
