"""Exactly-once guards at store level: owners, leases, concurrent claims. Both backends."""

from __future__ import annotations

import threading
import time
from typing import Any

from integration.conftest import Backend
from integration.domain import (
    DOMAIN_TABLES,
    INSERT_RESULT,
    Calls,
    add_items,
    count_words,
    orchestrator,
    rows,
    scalar,
)
from turing import RunResult
from turing.store import Store, TaskRow
from turing.store.db import Tx


def _ok(subject: str) -> RunResult:
    return RunResult("w", 1, "fp", output={"item_id": int(subject), "words": 3})


def _sink(result: RunResult) -> Any:
    def write(tx: Tx) -> None:
        tx.sql(INSERT_RESULT, result.output)

    return write


def _results_table(store: Store) -> None:
    with store.db.tx() as tx:
        tx.sql("CREATE TABLE results (item_id INTEGER PRIMARY KEY, words INTEGER NOT NULL)")


def _enqueue(store: Store, n: int) -> None:
    assert store.enqueue("w", 1, [(str(i), {"i": i}) for i in range(1, n + 1)]) == n


def _complete(store: Store, task: TaskRow, owner: str) -> str:
    result = _ok(task.subject)
    return store.complete(task, owner, result, sink=_sink(result), worker=owner)


def test_complete_by_owner_succeeds_once(store: Store) -> None:
    _results_table(store)
    _enqueue(store, 1)
    [task] = store.claim("a", 5)
    assert task.attempts == 1
    assert store.task(task.id)["status"] == "running"  # type: ignore[index]
    assert _complete(store, task, "a") == "succeeded"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 1
    # completing again (a duplicate delivery) is lost: the task is no longer running
    assert _complete(store, task, "a") == "lost"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 1
    statuses = [r["status"] for r in store.runs()]
    assert sorted(statuses) == ["discarded", "succeeded"]


def test_complete_with_wrong_owner_is_lost_and_discarded(store: Store) -> None:
    _results_table(store)
    _enqueue(store, 1)
    [task] = store.claim("a", 1)
    assert _complete(store, task, "intruder") == "lost"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 0
    [run] = store.runs()
    assert run["status"] == "discarded"
    assert run["error_kind"] == "lease_lost"
    assert run["task_id"] == task.id
    row = store.task(task.id)
    assert row is not None
    assert (row["status"], row["lease_owner"]) == ("running", "a")  # untouched
    # the real owner still completes it
    assert _complete(store, task, "a") == "succeeded"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 1


def test_failing_with_wrong_owner_is_lost_too(store: Store) -> None:
    _enqueue(store, 1)
    [task] = store.claim("a", 1)
    failed = RunResult("w", 1, "fp", status="failed")
    assert store.complete(task, "b", failed, worker="b") == "lost"
    row = store.task(task.id)
    assert row is not None and row["status"] == "running"
    assert [r["status"] for r in store.runs()] == ["discarded"]


def test_expired_lease_is_reclaimed_and_late_result_discarded(store: Store) -> None:
    _results_table(store)
    _enqueue(store, 1)
    [stale] = store.claim("crashed", 1, lease_s=-1)  # lease already over
    [fresh] = store.claim("b", 1)
    assert fresh.id == stale.id
    assert fresh.attempts == 2
    row = store.task(fresh.id)
    assert row is not None and row["lease_owner"] == "b"

    assert _complete(store, stale, "crashed") == "lost"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 0
    assert _complete(store, fresh, "b") == "succeeded"
    assert scalar(store, "SELECT COUNT(*) AS n FROM results") == 1
    assert sorted(r["status"] for r in store.runs()) == ["discarded", "succeeded"]


def test_live_lease_is_not_reclaimed(store: Store) -> None:
    _enqueue(store, 1)
    assert len(store.claim("a", 1, lease_s=600)) == 1
    assert store.claim("b", 1) == []


def test_release_returns_the_task_without_counting_an_attempt(store: Store) -> None:
    _enqueue(store, 1)
    [task] = store.claim("a", 1)
    assert store.release(task, "b") is False
    assert store.release(task, "a") is True
    [again] = store.claim("b", 1)
    assert (again.id, again.attempts) == (task.id, 1)


def test_claim_respects_limit_priority_and_filter(store: Store) -> None:
    store.enqueue("w", 1, [("1", {}), ("2", {})])
    store.enqueue("w", 1, [("3", {})], priority=5)
    store.enqueue("other", 1, [("1", {})], priority=9)
    claimed = store.claim("a", 2, workflows=["w"])
    assert [(t.workflow, t.subject) for t in claimed] == [("w", "3"), ("w", "1")]
    assert [t.subject for t in store.claim("a", 10, workflows=["w"])] == ["2"]
    assert [t.workflow for t in store.claim("a", 10)] == ["other"]


def test_two_stores_never_claim_the_same_task(backend: Backend) -> None:
    n = 120
    first, second = backend.store(), backend.store()
    try:
        _enqueue(first, n)
        got: dict[str, list[int]] = {"a": [], "b": []}
        oversized: list[int] = []
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def worker(name: str, store: Store) -> None:
            try:
                start.wait()
                while True:
                    batch = store.claim(name, 3)
                    if not batch:
                        return
                    if len(batch) > 3:
                        oversized.append(len(batch))
                    got[name].extend(t.id for t in batch)
                    for t in batch:
                        assert _complete_plain(store, t, name) == "succeeded"
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=("a", first)),
            threading.Thread(target=worker, args=("b", second)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert oversized == []
        union = got["a"] + got["b"]
        assert len(union) == len(set(union)) == n
        assert got["a"] and got["b"], "both workers should have claimed something"
        assert first.queue_counts() == {"w": {"succeeded": n}}
        runs = rows(first, "SELECT task_id, COUNT(*) AS n FROM turing_runs GROUP BY task_id")
        assert len(runs) == n
        assert all(r["n"] == 1 for r in runs)
    finally:
        first.close()
        second.close()


def _complete_plain(store: Store, task: TaskRow, owner: str) -> str:
    time.sleep(0.001)  # let the other worker in between claims
    return store.complete(task, owner, _ok(task.subject), worker=owner)


def test_two_orchestrators_at_once_write_each_result_once(backend: Backend) -> None:
    stores = [backend.store(), backend.store()]
    try:
        with stores[0].db.tx() as tx:
            for ddl in DOMAIN_TABLES:
                tx.sql(ddl)
        add_items(stores[0], range(1, 61), text=lambda i: "x " * (i % 7 + 1))
        calls = Calls()
        orchs = [
            orchestrator(s, count_words(calls), concurrency=3, worker_id=f"w{k}")
            for k, s in enumerate(stores)
        ]
        reports: list[Any] = []
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def run(k: int) -> None:
            try:
                start.wait()
                reports.append(orchs[k].process_pending_tasks())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sum(r.succeeded for r in reports) == 60
        assert sum(r.failed for r in reports) == 0
        assert len(calls.script) == 60  # every item executed exactly once
        assert scalar(stores[0], "SELECT COUNT(*) AS n FROM results") == 60
        assert stores[0].queue_counts() == {"count_words": {"succeeded": 60}}
        workers = rows(stores[0], "SELECT DISTINCT worker FROM turing_runs ORDER BY worker")
        assert len(workers) >= 1
    finally:
        for s in stores:
            s.close()


def test_result_of_a_worker_whose_lease_ran_out_is_discarded(backend: Backend) -> None:
    """Worker A is slow and its lease runs out; B reclaims and finishes; A's late result
    is recorded as discarded and never reaches the sink."""
    slow_started = threading.Event()
    release_slow = threading.Event()

    def slow(data: dict[str, Any]) -> dict[str, Any]:
        slow_started.set()
        release_slow.wait(10)
        return {"item_id": data["item_id"], "words": 999}

    stores = [backend.store(), backend.store()]
    try:
        with stores[0].db.tx() as tx:
            for ddl in DOMAIN_TABLES:
                tx.sql(ddl)
        add_items(stores[0], [1])
        wf_a = count_words(Calls(), run=slow)
        # A stalls: no heartbeat extends its lease (a frozen process)
        a = orchestrator(stores[0], wf_a, lease_s=0.05, heartbeat_s=60, worker_id="a")
        b = orchestrator(stores[1], count_words(Calls()), worker_id="b")
        reports: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: reports.update(a=a.process_pending_tasks()))
        thread.start()
        assert slow_started.wait(10)
        time.sleep(0.1)  # A's lease is over by now
        reports["b"] = b.process_pending_tasks(discover=False)
        release_slow.set()
        thread.join(10)

        assert reports["b"].succeeded == 1
        assert reports["a"].per_workflow["count_words"].lost == 1
        assert reports["a"].succeeded == 0
        assert rows(stores[0], "SELECT item_id, words FROM results") == [{"item_id": 1, "words": 1}]
        runs = {
            r["worker"]: r["status"]
            for r in rows(stores[0], "SELECT worker, status FROM turing_runs")
        }
        assert runs == {"a": "discarded", "b": "succeeded"}
        [task] = rows(stores[0], "SELECT status, attempts FROM turing_tasks")
        assert (task["status"], task["attempts"]) == ("succeeded", 2)
    finally:
        release_slow.set()
        for s in stores:
            s.close()
