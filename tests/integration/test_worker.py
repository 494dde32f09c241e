"""The worker on SQLite and PostgreSQL: cron ticks fire once across three worker processes,
missed ticks collapse to the latest, `max_tasks` and `discover = false` schedules,
heartbeats keep a long task leased (and without them it is reclaimed and the late result
discarded), and a stop finishes or releases what is in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import Backend
from integration.domain import DOMAIN_TABLES, Calls, add_items, count_words, orchestrator, rows
from turing.orchestrator import BatchLimits, Orchestrator, Report
from turing.schedules import Schedule, ticks
from turing.store import Store
from turing.worker import Worker, WorkerSummary, discover_new, owned_tasks

ROOT = Path(__file__).resolve().parents[2]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


class Running:
    """A Worker on its own thread and event loop (as `turing worker` runs it, minus signals)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.summary: WorkerSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.summary = self.worker.run()
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout: float = 20.0) -> WorkerSummary:
        self.worker.stop("test")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not stop"
        assert self.error is None, self.error
        assert self.summary is not None
        return self.summary


def _domain(store: Store, n: int = 10) -> None:
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, range(1, n + 1))


def _statuses(store: Store) -> dict[str, int]:
    return {k: v for counts in store.queue_counts().values() for k, v in counts.items()}


# ------------------------------------------------------------- ticks across processes
PROBE = """
import os, time
from pydantic import BaseModel
from turing import ScriptStep, Source, Workflow

class In(BaseModel):
    n: str

def fresh(tx):
    # every call is a new subject: each discovery that runs enqueues exactly one task
    return [{"n": f"{os.getpid()}-{time.time_ns()}"}]

probe = Workflow(
    "probe", input=In, output=In, subject_key="n",
    source=Source(fn=fresh),
    steps=[ScriptStep("noop", run=lambda data: data)],
)
"""

MAIN = """
import json, sys
from turing.orchestrator import BatchLimits, Orchestrator, Report
from turing.schedules import Schedule
from turing.worker import Worker

orch = Orchestrator.from_config(sys.argv[1], concurrency=2, lease_s=5)
worker = Worker(
    orch, schedules=[Schedule("every_second", "* * * * * *", ("probe",))],
    idle_s=0.05, grace_s=5,
)
print("ready", flush=True)
summary = worker.run(install_signals=True)
orch.close()
print(json.dumps(summary.as_dict()), flush=True)
"""


def test_three_worker_processes_fire_each_tick_exactly_once(
    backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "probe_flows.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "main.py").write_text(textwrap.dedent(MAIN))
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{backend.url()}"\nworkflows = ["probe_flows"]\n'
    )
    backend.store().close()  # create the schema once, before three processes race for it
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "main.py"), str(tmp_path / "turing.toml")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        watch = backend.store()
        try:  # however slowly the three run: until four ticks have fired
            wait_for(lambda: len(ticks(watch, "every_second")) >= 4, timeout=120, every=0.1)
        finally:
            watch.close()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))

    store = backend.store()
    try:
        fired = ticks(store, "every_second")
        tick_times = [r.tick_at for r in fired]
        assert len(tick_times) >= 4, fired
        assert len(set(tick_times)) == len(tick_times)
        assert all(t == int(t) for t in tick_times), "ticks sit on the cron grid (whole seconds)"
        # every tick ran exactly once: one discovery each, so one probe task each
        tasks = rows(store, "SELECT COUNT(*) AS n FROM turing_tasks WHERE workflow = 'probe'")
        assert tasks[0]["n"] == len(fired)
        assert all(r.finished_at is not None and r.tasks == 1 for r in fired), fired
        # each worker ran exactly the ticks it won, and the three together ran them all
        won = sorted(t["tick_at"] for s in summaries for t in s["ticks"])
        assert won == tick_times
        by_worker = {s["worker"]: len(s["ticks"]) for s in summaries}
        assert {r.worker for r in fired} <= set(by_worker)
        assert sum(by_worker.values()) == len(fired)
        # and the probe tasks were processed by the workers, none left running
        assert rows(store, "SELECT DISTINCT status FROM turing_tasks") in (
            [{"status": "succeeded"}],
            [{"status": "pending"}, {"status": "succeeded"}],
            [{"status": "succeeded"}, {"status": "pending"}],
        )
    finally:
        store.close()


# ------------------------------------------------------------------- driven clock
class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_missed_ticks_fire_only_the_latest_and_once(stores: Callable[[], Store]) -> None:
    first, second = stores(), stores()
    _domain(first)
    clock = Clock(ts("2024-01-01T00:07:30"))  # ticks at 00:00 and 00:05 went by unseen
    every5 = Schedule("every5", "*/5 * * * *", ("count_words",))

    def worker(store: Store, name: str) -> Worker:
        orch = orchestrator(store, count_words(Calls()), worker_id=name)
        return Worker(orch, schedules=[every5], clock=clock, tick_poll_s=0.02, idle_s=0.02)

    a = Running(worker(first, "a"))
    wait_for(lambda: len(ticks(first)) == 1 and ticks(first)[0].finished_at)
    assert [r.tick_at for r in ticks(first)] == [ts("2024-01-01T00:05:00")]
    wait_for(lambda: _statuses(first).get("succeeded") == 10)

    clock.now = ts("2024-01-01T00:31:10")  # five more ticks went by at once
    wait_for(lambda: len(ticks(first)) == 2)
    b = Running(worker(second, "b"))  # a late second worker finds nothing left to fire
    time.sleep(0.3)
    sa, sb = a.stop(), b.stop()
    expected = [ts("2024-01-01T00:05:00"), ts("2024-01-01T00:30:00")]
    assert [r.tick_at for r in ticks(first)] == expected
    assert [t.tick_at for t in sa.ticks] == expected
    assert sb.ticks == []
    assert [t.tasks for t in sa.ticks] == [10, 0]  # the second found nothing new
    assert all(r.worker == "a" for r in ticks(first))


def test_max_tasks_caps_new_tasks_per_tick_and_failures_do_not_starve_it(
    stores: Callable[[], Store],
) -> None:
    store = stores()
    _domain(store)
    calls = Calls(fail_ids={1, 2, 3})
    orch = orchestrator(store, count_words(calls), worker_id="w")
    [d] = discover_new(orch, ["count_words"], 3)
    assert (d.count, d.enqueued, d.sample_keys) == (10, 3, ["1", "2", "3"])
    assert orch.process_pending_tasks(discover=False).failed == 3  # items 1-3 fail
    # the failed subjects stay in the source, but are skipped before counting
    [d] = discover_new(orch, ["count_words"], 3)
    assert (d.enqueued, d.sample_keys) == (3, ["4", "5", "6"])
    [d] = discover_new(orch, None, 100)
    assert d.enqueued == 4
    assert [d.enqueued for d in discover_new(orch, None, 100)] == [0]


def test_a_discover_false_schedule_processes_queued_work_only_on_its_ticks(
    stores: Callable[[], Store],
) -> None:
    store = stores()
    _domain(store)
    orch = orchestrator(store, count_words(Calls()), worker_id="w")
    orch.discover_pending_tasks()  # 10 queued by someone else
    clock = Clock(ts("2024-01-01T01:59:00"))
    nightly = Schedule("nightly", "0 2 * * *", ("count_words",), max_tasks=4, discover=False)
    w = Worker(orch, schedules=[nightly], clock=clock, tick_poll_s=0.02, idle_s=0.02)
    assert w.continuous == []
    running = Running(w)
    # the latest past tick (yesterday 02:00) was never fired: it fires now, 4 tasks
    wait_for(lambda: _statuses(store).get("succeeded") == 4)
    time.sleep(0.3)  # between ticks nothing else is processed
    assert _statuses(store) == {"succeeded": 4, "pending": 6}
    clock.now = ts("2024-01-01T02:00:01")
    wait_for(lambda: _statuses(store).get("succeeded") == 8)
    time.sleep(0.2)
    summary = running.stop()
    assert _statuses(store) == {"succeeded": 8, "pending": 2}
    assert [t.tasks for t in summary.ticks] == [4, 4]
    assert [r.tasks for r in ticks(store)] == [4, 4]


# --------------------------------------------------------------------- heartbeats
@pytest.mark.parametrize("heartbeats", [True, False], ids=["heartbeats", "no-heartbeats"])
def test_heartbeats_keep_a_long_task_from_being_reclaimed(
    stores: Callable[[], Store], heartbeats: bool
) -> None:
    """Lease 0.8 s, task 2.5 s. With heartbeats the other worker never gets it; without
    (the control) it is reclaimed, and the first worker's late result is discarded."""
    store_a, store_b = stores(), stores()
    _domain(store_a, 1)
    started, release = threading.Event(), threading.Event()

    def slow(data: dict[str, Any]) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {"item_id": data["item_id"], "words": 999}

    orch_a = orchestrator(store_a, count_words(Calls(), run=slow), worker_id="a", lease_s=0.8)
    orch_a.discover_pending_tasks()
    a = Running(Worker(orch_a, heartbeat_s=0.1 if heartbeats else 60, idle_s=0.02))
    assert started.wait(10)
    orch_b = orchestrator(store_b, count_words(Calls()), worker_id="b", lease_s=0.8)
    b = Running(Worker(orch_b, idle_s=0.02))
    if heartbeats:
        time.sleep(2.5)  # three lease periods
        task = rows(store_a, "SELECT status, lease_owner, attempts FROM turing_tasks")[0]
        assert (task["status"], task["lease_owner"], task["attempts"]) == ("running", "a", 1)
    else:  # reclaimed once the lease ran out, however long b takes to get there
        wait_for(
            lambda: (
                rows(store_a, "SELECT status, attempts FROM turing_tasks")
                == [{"status": "succeeded", "attempts": 2}]
            )
        )
    release.set()
    wait_for(lambda: len(rows(store_a, "SELECT id FROM turing_runs")) == (1 if heartbeats else 2))
    sa, sb = a.stop(), b.stop()
    results = rows(store_a, "SELECT item_id, words FROM results")
    runs = rows(store_a, "SELECT worker, status, error_kind FROM turing_runs ORDER BY id")
    if heartbeats:
        assert results == [{"item_id": 1, "words": 999}]
        assert runs == [{"worker": "a", "status": "succeeded", "error_kind": None}]
        assert (sa.report.succeeded, sb.report.processed) == (1, 0)
        assert sa.heartbeats >= 3  # at least one per lease period the task outlived
    else:
        assert results == [{"item_id": 1, "words": 1}]  # written once, by b
        assert runs == [
            {"worker": "b", "status": "succeeded", "error_kind": None},
            {"worker": "a", "status": "discarded", "error_kind": "lease_lost"},
        ]
        assert sa.report.per_workflow["count_words"].lost == 1
    assert _statuses(store_a) == {"succeeded": 1}


# ------------------------------------------------------------------------- stopping
def _blocking(release: threading.Event, started: list[int]) -> Callable[..., Any]:
    def run(data: dict[str, Any]) -> dict[str, Any]:
        started.append(data["item_id"])
        release.wait(20)
        return {"item_id": data["item_id"], "words": 1}

    return run


def test_stop_releases_what_outlives_the_grace_period(stores: Callable[[], Store]) -> None:
    store = stores()
    _domain(store, 6)
    release, started = threading.Event(), []
    orch = orchestrator(store, count_words(Calls(), run=_blocking(release, started)), concurrency=3)
    orch.discover_pending_tasks()
    running = Running(Worker(orch, grace_s=0.3, idle_s=0.02))
    try:
        wait_for(lambda: len(started) == 3)
        summary = running.stop()  # the tasks block for 20 s: the grace period must end them
    finally:
        release.set()
    assert (summary.released, summary.forced, summary.report.processed) == (3, True, 0)
    assert summary.stop_reason == "test"
    assert _statuses(store) == {"pending": 6}
    assert rows(store, "SELECT DISTINCT attempts, lease_owner FROM turing_tasks") == [
        {"attempts": 0, "lease_owner": None}
    ]
    assert owned_tasks(store, orch.worker_id) == []
    time.sleep(0.2)  # the cancelled runs' threads finish now: they must not complete anything
    assert _statuses(store) == {"pending": 6}
    assert rows(store, "SELECT COUNT(*) AS n FROM results") == [{"n": 0}]


def test_stop_lets_in_flight_tasks_finish_within_grace_and_claims_nothing_more(
    stores: Callable[[], Store],
) -> None:
    store = stores()
    _domain(store, 6)
    release, started = threading.Event(), []
    orch = orchestrator(store, count_words(Calls(), run=_blocking(release, started)), concurrency=2)
    orch.discover_pending_tasks()
    running = Running(Worker(orch, grace_s=10, idle_s=0.02))
    wait_for(lambda: len(started) == 2)
    running.worker.stop("test")
    time.sleep(0.2)
    threading.Timer(0.3, release.set).start()
    summary = running.stop()
    assert (summary.released, summary.forced, summary.report.succeeded) == (0, False, 2)
    assert sorted(started) == [1, 2]
    assert _statuses(store) == {"succeeded": 2, "pending": 4}


def test_the_project_batch_limit_counts_over_the_workers_life(
    stores: Callable[[], Store],
) -> None:
    """Each drain is a new batch for the orchestrator; for a worker the limit is lifelong:
    once reached it stops claiming and stops by itself."""
    store = stores()
    _domain(store, 10)
    limited = _AfterTasks(stop_after=3)
    orch = orchestrator(store, count_words(Calls()), concurrency=1, batch_limits=limited)
    orch.discover_pending_tasks()
    running = Running(Worker(orch, idle_s=0.02))
    running.thread.join(10)
    assert not running.thread.is_alive(), "the worker should have stopped by itself"
    assert running.summary is not None
    assert running.summary.stop_reason == "3 tasks done"
    assert _statuses(store) == {"succeeded": 3, "pending": 7}
    assert orch.batch_limits is limited  # restored after the run


@dataclass(frozen=True)
class _AfterTasks(BatchLimits):
    """A batch limit (of any kind): over once `stop_after` tasks were processed."""

    stop_after: int = 0

    def exceeded(self, report: Report) -> str | None:
        return f"{report.processed} tasks done" if report.processed >= self.stop_after else None


def test_worker_does_not_close_the_orchestrator(stores: Callable[[], Store]) -> None:
    store = stores()
    _domain(store, 2)
    orch: Orchestrator = orchestrator(store, count_words(Calls()))
    orch.discover_pending_tasks()
    running = Running(Worker(orch, idle_s=0.02))
    wait_for(lambda: _statuses(store).get("succeeded") == 2)
    summary = running.stop()
    assert summary.report.succeeded == 2
    assert orch.store.queue_counts() == {"count_words": {"succeeded": 2}}


def test_an_open_circuit_pauses_the_worker_it_does_not_stop_it(
    stores: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model host that is down opens its circuit: `turing run` stops (exit 3), but a
    long-running worker waits and looks again; its tasks are processed once the host is
    back. (The circuit's first report here stands in for the breaker's.)"""
    import turing.worker as worker_module

    monkeypatch.setattr(worker_module, "CIRCUIT_PAUSE_S", 0.05)
    store = stores()
    _domain(store, 3)
    orch = orchestrator(store, count_words(Calls()))
    orch.discover_pending_tasks()
    real = orch.aprocess
    opened = {"n": 0}

    async def first_circuit_then_real(*args: Any, **kwargs: Any) -> Report:
        if opened["n"] < 2:
            opened["n"] += 1
            return Report(stopped="circuit open for 127.0.0.1:9: down", circuit_open=True)
        return await real(*args, **kwargs)

    monkeypatch.setattr(orch, "aprocess", first_circuit_then_real)
    running = Running(Worker(orch, idle_s=0.02))
    deadline = time.monotonic() + 20
    while _statuses(store).get("succeeded", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    summary = running.stop()
    assert summary.stop_reason == "test"  # not stopped by the circuit
    assert _statuses(store) == {"succeeded": 3} and opened["n"] == 2
