"""The store-side classes that leases, schedules, stats, limits and host coordination go
through, and fault 8 of issue 10: the lease heartbeat deadlocked with other multi-row
updates of the same rows (`DeadlockDetected`), which, repeated, would lose a live worker
its leases.

On PostgreSQL the heartbeat (`extend_leases`) now locks the owner's rows in id order and
skips the rows another transaction holds, so it never waits on a row lock. The deadlock
test builds the exact interleaving that deadlocked: another transaction locks the owner's
last row, the heartbeat starts, then that transaction updates the owner's other rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from integration.conftest import Backend
from turing.leases import LeaseHeartbeat, extend_leases
from turing.store import Store
from turing.store.leases import LeaseStore
from turing.store.schedules import TickStore
from turing.store.stats import StatsStore

OWNER = "w"
LEASE_S = 600.0
WAIT_S = 30.0  # an upper bound for waits on other threads, never a timing assertion


def running_tasks(store: Store, n: int) -> list[int]:
    """`n` tasks claimed by OWNER (status running), their ids ascending."""
    store.enqueue("wf", 1, [(f"s{i}", {"i": i}) for i in range(n)])
    claimed = store.claim(OWNER, n, lease_s=LEASE_S)
    assert len(claimed) == n
    return sorted(t.id for t in claimed)


def leases(store: Store) -> dict[int, float]:
    with store.db.read() as tx:
        rows = tx.sql(
            "SELECT id, lease_expires_at FROM turing_tasks WHERE lease_owner = :o", {"o": OWNER}
        )
    return {int(r["id"]): float(r["lease_expires_at"]) for r in rows}


def touch(tx: Any, ids: list[int]) -> None:
    """Lock rows (an UPDATE that changes nothing the queue cares about), one at a time."""
    for task_id in ids:
        tx.sql("UPDATE turing_tasks SET priority = priority WHERE id = :id", {"id": task_id})


def waiting_on_a_lock(store: Store) -> bool:
    with store.db.read() as tx:
        rows = tx.sql("SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted")
    return int(rows[0]["n"]) > 0


class Outcome:
    """What a thread returned or raised."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self, fn: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                self.value = fn()
            except BaseException as exc:
                self.error = exc
            finally:
                self.done.set()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread


def test_heartbeat_never_deadlocks_with_a_multi_row_update_in_another_order(
    backend: Backend, stores: Callable[[], Store]
) -> None:
    if backend.name != "postgres":
        pytest.skip("SQLite serialises writers: no row locks, no deadlock")
    store, other, watcher = stores(), stores(), stores()
    ids = running_tasks(store, 6)
    before = leases(store)
    with watcher.db.read() as tx:  # the row a plain UPDATE of the owner's rows reaches last
        [row] = tx.sql("SELECT id FROM turing_tasks ORDER BY ctid DESC LIMIT 1")
    last = int(row["id"])
    rest = [i for i in reversed(ids) if i != last]
    holding_last, go_on = threading.Event(), threading.Event()

    def other_update() -> None:
        # Locks that row, then (once the heartbeat runs) all the others, highest id first.
        with other.db.tx() as tx:
            touch(tx, [last])
            holding_last.set()
            assert go_on.wait(WAIT_S)
            touch(tx, rest)

    updater = Outcome()
    updater_thread = updater.run(other_update)
    assert holding_last.wait(WAIT_S)
    beat = Outcome()
    beat_thread = beat.run(lambda: extend_leases(store, OWNER, LEASE_S * 2))
    # Before the fix the heartbeat locked the first rows and waited for the last one here.
    for _ in range(int(WAIT_S / 0.01)):
        if beat.done.is_set() or waiting_on_a_lock(watcher):
            break
        beat.done.wait(0.01)
    go_on.set()
    beat_thread.join(WAIT_S)
    updater_thread.join(WAIT_S)
    assert beat.error is None, f"the heartbeat failed: {beat.error!r}"
    assert updater.error is None, f"the other update failed: {updater.error!r}"
    assert beat.value == len(ids) - 1  # the row the other transaction held was skipped
    after = leases(store)
    assert all(after[i] > before[i] for i in rest)
    assert after[last] == before[last]
    # The next beat extends the row that was skipped.
    assert extend_leases(store, OWNER, LEASE_S * 3) == len(ids)
    assert all(t > after[i] for i, t in leases(store).items())


def test_heartbeats_beside_updates_in_the_opposite_order(
    backend: Backend, stores: Callable[[], Store]
) -> None:
    """Many rounds: another connection updates the owner's rows one at a time from the last
    to the first while the heartbeat beats; no beat fails and every lease ends extended."""
    store, other = stores(), stores()
    ids = running_tasks(store, 8)
    rounds = 40
    stop = threading.Event()
    beats: list[int] = []
    errors: list[BaseException] = []

    def beat() -> None:
        while not stop.is_set():
            try:
                beats.append(extend_leases(store, OWNER, LEASE_S))
            except Exception as exc:  # a deadlock would surface here
                errors.append(exc)

    def reverse_updates() -> None:
        for _ in range(rounds):
            with other.db.tx() as tx:
                touch(tx, ids[::-1])

    heart = threading.Thread(target=beat, daemon=True)
    heart.start()
    updates = Outcome()
    updates.run(reverse_updates).join(WAIT_S * 4)
    stop.set()
    heart.join(WAIT_S)
    assert updates.error is None, repr(updates.error)
    assert errors == []
    assert beats and all(0 <= n <= len(ids) for n in beats)
    last = leases(store)
    assert extend_leases(store, OWNER, LEASE_S * 2) == len(ids)
    assert all(t > last[i] for i, t in leases(store).items())


def test_a_failed_beat_is_logged_on_the_turing_leases_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def tx(self) -> AbstractContextManager[Any]:
            raise ConnectionError("server closed the connection unexpectedly")

    class BrokenStore:
        db = Broken()

    said: list[str] = []
    heartbeat = LeaseHeartbeat(BrokenStore(), OWNER, 1.0, every_s=0.01, log=said.append)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="turing.leases"):
        heartbeat.start()
        try:
            for _ in range(int(WAIT_S / 0.01)):
                if said:
                    break
                threading.Event().wait(0.01)
        finally:
            heartbeat.stop()
    assert said and said[0].startswith("heartbeat failed (ConnectionError: server closed")
    records = [r for r in caplog.records if r.name == "turing.leases"]
    beats = [r for r in records if "heartbeat failed" in r.getMessage()]
    assert beats and beats[0].levelno == logging.WARNING
    # registering the worker for the dashboard failed too: said, on the same logger
    assert all(r.levelno == logging.WARNING for r in records)
    assert heartbeat.beats == 0 and not heartbeat.is_alive()


# ------------------------------------------------------------- the other store classes
def test_owned_tasks_are_typed_rows(stores: Callable[[], Store]) -> None:
    store = stores()
    ids = running_tasks(store, 3)
    owned = LeaseStore(store.db).owned(OWNER)
    assert [t.id for t in owned] == ids
    assert [t.input for t in owned] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert LeaseStore(store.db).owned("nobody") == []


def test_ticks_fire_once_and_read_back_typed(stores: Callable[[], Store]) -> None:
    ticks = TickStore(stores().db)
    assert ticks.claim("nightly", 100.0, "a", now=101.0)
    assert not ticks.claim("nightly", 100.0, "b", now=101.5)
    assert ticks.claim("nightly", 200.0, "b", now=201.0)
    ticks.finish("nightly", 100.0, "a", now=105.0, tasks=7, error=None)
    first, second = ticks.list("nightly")
    assert (first.worker, first.fired_at, first.finished_at, first.tasks) == ("a", 101.0, 105.0, 7)
    assert (second.worker, second.finished_at, second.tasks) == ("b", None, None)
    assert ticks.last() == {"nightly": second}
    assert ticks.list("other") == []


def test_history_window_and_prune_counts_on_an_empty_store(stores: Callable[[], Store]) -> None:
    history = StatsStore(stores().db)
    window = history.window(0.0, 1e12, ["x"])
    assert (window.groups, window.durations, window.latencies, window.repairs) == ([], [], [], {})
    counts = history.prunable(1e12)
    assert (counts.runs, counts.calls, counts.repairs, counts.tasks, counts.ticks) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert history.prune_runs(1e12, 10).batch == 0
    assert history.prune_ticks_and_tasks(1e12, tasks=True) == (0, 0)
