"""Lease heartbeats of `turing run` (`Orchestrator.aprocess`), on both backends: a task that
runs longer than its lease is not reclaimed by another orchestrator while the first is alive
(the control, with the heartbeat slowed down, shows it would be), and the heartbeat thread
ends with the run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from integration.domain import DOMAIN_TABLES, Calls, add_items, count_words, orchestrator, rows
from turing.orchestrator import Report
from turing.queue.session import ProcessingSession
from turing.store import Store


def heartbeat_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "turing-heartbeat")


@pytest.mark.parametrize("heartbeats", [True, False], ids=["heartbeats", "no-heartbeats"])
def test_a_long_task_of_turing_run_keeps_its_lease(
    stores: Callable[[], Store], heartbeats: bool
) -> None:
    """Lease 1 s, task about 3 s: with the run's heartbeat the other orchestrator never
    claims it; without it (the control) the task is reclaimed and the late result discarded."""
    store_a, store_b = stores(), stores()
    with store_a.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store_a, [1])
    started, release = threading.Event(), threading.Event()

    def slow(data: dict[str, Any]) -> dict[str, Any]:
        started.set()
        release.wait(15)
        return {"item_id": data["item_id"], "words": 999}

    # the control: without heartbeats the first beat comes long after the lease
    beat = None if heartbeats else 60.0
    orch_a = orchestrator(
        store_a, count_words(Calls(), run=slow), worker_id="a", lease_s=1, heartbeat_s=beat
    )
    threads_before = heartbeat_threads()
    reports: list[Report] = []
    run_a = threading.Thread(target=lambda: reports.append(orch_a.process_pending_tasks()))
    run_a.start()
    assert started.wait(10)
    assert heartbeat_threads() == threads_before + 1

    orch_b = orchestrator(store_b, count_words(Calls()), worker_id="b", lease_s=1)
    claimed_by_b = 0
    deadline = time.monotonic() + 3.0  # three lease periods
    while time.monotonic() < deadline:
        claimed_by_b += orch_b.process_pending_tasks(discover=False).processed
        time.sleep(0.1)
    task = rows(store_a, "SELECT status, lease_owner, attempts FROM turing_tasks")[0]
    release.set()
    run_a.join(15)
    assert not run_a.is_alive()
    [report_a] = reports
    results = rows(store_a, "SELECT item_id, words FROM results")
    runs = rows(store_a, "SELECT worker, status, error_kind FROM turing_runs ORDER BY id")
    if heartbeats:
        assert claimed_by_b == 0
        assert (task["status"], task["lease_owner"], task["attempts"]) == ("running", "a", 1)
        assert report_a.succeeded == 1
        assert results == [{"item_id": 1, "words": 999}]
        assert runs == [{"worker": "a", "status": "succeeded", "error_kind": None}]
    else:
        assert claimed_by_b == 1
        assert (task["status"], task["attempts"]) == ("succeeded", 2)
        assert report_a.per_workflow["count_words"].lost == 1
        assert results == [{"item_id": 1, "words": 1}]  # written once, by b
        assert runs == [
            {"worker": "b", "status": "succeeded", "error_kind": None},
            {"worker": "a", "status": "discarded", "error_kind": "lease_lost"},
        ]
    # the run's heartbeat ended with it
    assert heartbeat_threads() == threads_before


class _Holder:
    """Records what a session does with the limiter and the shared hosts."""

    def __init__(self) -> None:
        self.alive = 0
        self.released = 0

    async def keep_alive(self) -> None:
        self.alive += 1
        await asyncio.Event().wait()  # until cancelled

    def release_all(self) -> None:
        self.released += 1


@pytest.mark.parametrize("exit_by", ["normal", "error", "cancel"])
def test_a_session_releases_everything_on_every_exit_path(
    stores: Callable[[], Store], exit_by: str
) -> None:
    """Heartbeat thread, limiter keep-alive and shared-host registrations end with the
    session however it ends (plan execution once forgot the shared hosts)."""
    store = stores()
    limiter, hosts = _Holder(), _Holder()
    before = heartbeat_threads()
    session = ProcessingSession(
        store, "a", lease_s=0.3, heartbeat_s=0.05, limiter=limiter, shared_hosts=hosts
    )

    async def body() -> None:
        async with session:
            await asyncio.sleep(0)
            assert heartbeat_threads() == before + 1 and limiter.alive == 1
            if exit_by == "error":
                raise RuntimeError("boom")
            if exit_by == "cancel":
                asyncio.current_task().cancel()  # type: ignore[union-attr]
                await asyncio.sleep(1)

    if exit_by == "normal":
        asyncio.run(body())
    else:
        with pytest.raises(RuntimeError if exit_by == "error" else asyncio.CancelledError):
            asyncio.run(body())
    assert heartbeat_threads() == before
    assert (limiter.released, hosts.released) == (1, 1)


def test_the_plan_runner_releases_shared_hosts(stores: Callable[[], Store]) -> None:
    hosts = _Holder()
    orch = orchestrator(stores(), count_words(Calls()), worker_id="a", shared_hosts=hosts)
    orch.process_pending_tasks()
    assert hosts.released == 1
    from turing.planning import Plan, PlanStep

    step = PlanStep(id="s1", workflow="count_words", inputs={"item_id": 1, "text": "a b"})
    plan = Plan(goal="count the words of item 1", steps=(step,))
    orch.execute_plan(plan)
    assert hosts.released == 2
