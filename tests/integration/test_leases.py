"""Lease heartbeats of `turing run` (`Orchestrator.aprocess`), on both backends: a task that
runs longer than its lease is not reclaimed by another orchestrator while the first is alive
(the control, with the heartbeat slowed down, shows it would be), and the heartbeat thread
ends with the run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration.conftest import Backend
from integration.domain import DOMAIN_TABLES, Calls, add_items, count_words, orchestrator, rows
from turing.orchestrator import Report
from turing.store import Store


@pytest.fixture
def stores(backend: Backend) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        s = backend.store()
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


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

    orch_a = orchestrator(store_a, count_words(Calls(), run=slow), worker_id="a", lease_s=1)
    if not heartbeats:
        orch_a.heartbeat_s = 60  # the control: the first beat comes long after the lease
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
    assert orch_a._leases is None


def test_nested_holds_share_one_heartbeat(stores: Callable[[], Store]) -> None:
    orch = orchestrator(stores(), count_words(Calls()), worker_id="a", lease_s=0.3)
    before = heartbeat_threads()
    outer = orch.hold_leases(0.05)
    inner = orch.hold_leases()
    assert inner is outer and outer.every_s == 0.05
    assert heartbeat_threads() == before + 1
    orch.drop_leases()
    assert outer.is_alive()
    time.sleep(0.2)
    assert outer.beats >= 2
    orch.drop_leases()
    assert not outer.is_alive() and heartbeat_threads() == before
    again = orch.hold_leases()  # a later hold starts a new thread, at the default interval
    assert again is not outer and again.every_s == pytest.approx(0.1)
    orch.drop_leases()
    assert not again.is_alive()
