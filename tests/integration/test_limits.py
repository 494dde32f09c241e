"""Shared limits through the database, on both backends: exact sliding windows under threads
and real processes, concurrency across processes, a killed holder's slots reclaimed,
all-or-nothing acquisition, independence of keys, token settlement, precise waits."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from integration.conftest import Backend
from turing.limits import (
    Limiter,
    LimitKey,
    LimitTimeout,
    LimitUnsatisfiable,
    Permit,
    Wait,
)
from turing.store import Store
from turing.store.db import Database, connect

LOG_TABLE = "CREATE TABLE lim_log (who TEXT NOT NULL, t0 {real} NOT NULL, t1 {real} NOT NULL)"
# Worker processes are forked by a fork server that has imported the heavy modules once, so
# starting one costs milliseconds, not a fresh interpreter (and this threaded process is never
# forked). Python 3.11's fork server ignores sys.path, so this module itself cannot be preloaded.
SPAWN = mp.get_context("forkserver")
SPAWN.set_forkserver_preload(["pytest", "turing", "turing.limits", "psycopg", "psycopg_pool"])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(store: Store) -> Database:
    return store.db


def _log_table(db: Database) -> None:
    with db.tx() as tx:
        tx.sql(LOG_TABLE.format(real="REAL" if db.dialect == "sqlite" else "DOUBLE PRECISION"))


def _log(db: Database, who: str, rows: list[tuple[float, float]]) -> None:
    with db.tx() as tx:
        for t0, t1 in rows:
            params = {"who": who, "t0": t0, "t1": t1}
            tx.sql("INSERT INTO lim_log (who, t0, t1) VALUES (:who, :t0, :t1)", params)


def _logged(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        return tx.sql("SELECT who, t0, t1 FROM lim_log ORDER BY t0")


def max_in_window(times: list[float], period: float) -> int:
    """Most timestamps in any half-open window [t, t + period)."""
    times = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + period:
            j += 1
        best = max(best, j - i)
    return best


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = now = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        best = max(best, now)
    return best


# ------------------------------------------------------------------ worker processes
@dataclass(frozen=True)
class Job:
    """What one worker process does: `tasks` acquirers on one limit for `seconds`."""

    url: str
    who: str
    limit: str | int
    tasks: int
    seconds: float


def _rate_worker(job: Job, go: Any) -> None:
    """Hammer one rate key with concurrent acquirers; log the grant times."""
    who, tasks = job.who, job.tasks
    db = connect(job.url)
    limiter = Limiter(db, holder=who)
    key = LimitKey.parse("actor:shared", job.limit)
    limiter.release(_permit(limiter.try_acquire([key])))  # connect, make the lock row
    with db.tx() as tx:  # ... and leave the window empty for the measurement
        tx.sql("DELETE FROM turing_limit_grants")
    go.wait()
    end = time.time() + job.seconds

    async def hammer() -> list[tuple[float, float]]:
        got = []
        while (left := end - time.time()) > 0:
            try:
                permit = await limiter.acquire([key], timeout=left)
            except LimitTimeout:
                break
            got.append((permit.granted_at, permit.granted_at))
        return got

    async def main() -> list[tuple[float, float]]:
        parts = await asyncio.gather(*(hammer() for _ in range(tasks)))
        return [g for part in parts for g in part]

    _log(db, who, asyncio.run(main()))
    db.close()


def _slot_worker(job: Job, go: Any) -> None:
    """Hold a concurrency slot for 15 ms at a time; log each holding interval."""
    who, tasks = job.who, job.tasks
    db = connect(job.url)
    limiter = Limiter(db, holder=who)
    key = LimitKey.parse("provider:http://model-host:11434", job.limit)
    limiter.release(_permit(limiter.try_acquire([key])))  # connect, make the lock row
    go.wait()
    end = time.time() + job.seconds

    async def hammer() -> list[tuple[float, float]]:
        held = []
        while end - time.time() > 0:
            permit = await limiter.acquire([key])
            start = time.time()
            await asyncio.sleep(0.015)
            held.append((start, time.time()))
            await asyncio.to_thread(limiter.release, permit)
        return held

    async def main() -> list[tuple[float, float]]:
        parts = await asyncio.gather(*(hammer() for _ in range(tasks)))
        return [h for part in parts for h in part]

    _log(db, who, asyncio.run(main()))
    db.close()


def _holder_then_hang(url: str, ready: Any) -> None:
    """Take the only slot, say so, and hang until killed (no heartbeat, no release)."""
    db = connect(url)
    limiter = Limiter(db, holder="doomed", slot_ttl=0.6)
    permit = limiter.try_acquire([LimitKey.parse("actor:single", 1)])
    assert isinstance(permit, Permit)
    ready.set()
    time.sleep(60)


def _run_processes(target: Any, jobs: list[Job]) -> None:
    go = SPAWN.Barrier(len(jobs) + 1)
    procs = [SPAWN.Process(target=target, args=(job, go)) for job in jobs]
    for p in procs:
        p.start()
    try:
        go.wait(timeout=60)
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"worker exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()


# ------------------------------------------------------------------ rate limits
def test_rate_limit_is_exact_across_processes(backend: Backend, db: Database) -> None:
    """3 processes x 4 tasks on one "40/0.5s" key for 2 s: no half-second window ever
    holds more than 40 grants, and nearly all of the allowed 160 are granted."""
    _log_table(db)
    seconds = 2.0
    _run_processes(
        _rate_worker,
        [Job(backend.url(), f"p{i}", "40/0.5s", 4, seconds) for i in range(3)],
    )
    rows = _logged(db)
    times = [r["t0"] for r in rows]
    assert {r["who"] for r in rows} == {"p0", "p1", "p2"}
    assert max_in_window(times, 0.5) == 40
    first = min(times)
    in_run = sum(1 for t in times if t < first + seconds)
    assert in_run >= 0.9 * 40 * seconds / 0.5, in_run


def test_rate_limit_is_exact_under_threads(backend: Backend, db: Database) -> None:
    """4 threads, each its own connection and holder, through the synchronous API."""
    _log_table(db)
    key = LimitKey.parse("workflow:w", "25/0.25s")
    seconds = 1.0
    start = threading.Barrier(4)

    def hammer(who: str) -> None:
        own = connect(backend.url())
        limiter = Limiter(own, holder=who)
        got = []
        start.wait()
        end = time.time() + seconds
        while time.time() < end:
            result = limiter.try_acquire([key])
            if isinstance(result, Permit):
                got.append((result.granted_at, result.granted_at))
            else:
                assert result.seconds > 0
                time.sleep(min(result.seconds, max(end - time.time(), 0)))
        _log(own, who, got)
        own.close()

    threads = [threading.Thread(target=hammer, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = [r["t0"] for r in _logged(db)]
    assert max_in_window(times, 0.25) == 25
    first = min(times)
    assert sum(1 for t in times if t < first + seconds) >= 0.9 * 25 * seconds / 0.25


def test_sliding_window_and_exact_wait(db: Database) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock)
    key = LimitKey.parse("actor:a", "3/10s")
    t = clock.now
    for offset in (0.0, 1.0, 2.0):
        clock.now = t + offset
        assert isinstance(limiter.try_acquire([key]), Permit)
    clock.now = t + 5.0
    wait = limiter.try_acquire([key])
    assert isinstance(wait, Wait)
    assert wait.seconds == pytest.approx(5.0)  # until the grant at t leaves the window
    assert wait.key == key and wait.blocked == (key,)
    assert "actor:a 3/10s" in wait.reason and "3 of 3" in wait.reason
    clock.now = t + 10.0
    assert isinstance(limiter.try_acquire([key]), Permit)
    # a fixed window would reset here; the sliding one still counts the grants at t+1, t+2
    clock.now = t + 10.5
    wait = limiter.try_acquire([key])
    assert isinstance(wait, Wait)
    assert wait.seconds == pytest.approx(0.5)


def test_several_windows_on_one_scope(db: Database) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock)
    burst, sustained = LimitKey.parse("actor:a", "2/s"), LimitKey.parse("actor:a", "3/min")
    assert burst.id != sustained.id
    assert isinstance(limiter.try_acquire([burst, sustained]), Permit)
    assert isinstance(limiter.try_acquire([burst, sustained]), Permit)
    wait = limiter.try_acquire([burst, sustained])
    assert isinstance(wait, Wait) and wait.key == burst
    clock.now += 1
    assert isinstance(limiter.try_acquire([burst, sustained]), Permit)
    clock.now += 1
    wait = limiter.try_acquire([burst, sustained])
    assert isinstance(wait, Wait)
    assert wait.key == sustained and wait.seconds == pytest.approx(58.0)


# ------------------------------------------------------------------ concurrency limits
def test_concurrency_limit_holds_across_processes(backend: Backend, db: Database) -> None:
    _log_table(db)
    _run_processes(
        _slot_worker,
        [Job(backend.url(), f"p{i}", 3, 3, 1.2) for i in range(3)],
    )
    rows = _logged(db)
    assert {r["who"] for r in rows} == {"p0", "p1", "p2"}
    assert max_overlap([(r["t0"], r["t1"]) for r in rows]) == 3
    with db.read() as tx:
        assert tx.sql("SELECT COUNT(*) AS n FROM turing_limit_slots") == [{"n": 0}]


def test_slots_of_a_killed_holder_are_reclaimed(backend: Backend, db: Database) -> None:
    ready = SPAWN.Event()
    proc = SPAWN.Process(target=_holder_then_hang, args=(backend.url(), ready))
    proc.start()
    try:
        assert ready.wait(timeout=60)
        key = LimitKey.parse("actor:single", 1)
        limiter = Limiter(db, "survivor")
        wait = limiter.try_acquire([key])
        assert isinstance(wait, Wait)
        assert "1 of 1 slots held" in wait.reason
        assert 0 < wait.seconds <= 0.6
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=10)
        permit = asyncio.run(limiter.acquire([key], timeout=5))  # once the 0.6 s slot expired
        assert isinstance(permit, Permit)
    finally:
        if proc.is_alive():
            proc.kill()


def test_heartbeat_keeps_slots_and_release_frees_them(db: Database) -> None:
    clock = Clock()
    holder = Limiter(db, "holder", clock, slot_ttl=10)
    other = Limiter(db, "other", clock, slot_ttl=10)
    key = LimitKey.parse("global", 2)
    a, b = holder.try_acquire([key]), holder.try_acquire([key])
    assert isinstance(a, Permit) and isinstance(b, Permit)
    clock.now += 8
    assert holder.heartbeat() == 2
    clock.now += 8  # 16 s after acquiring, alive thanks to the heartbeat
    assert isinstance(other.try_acquire([key]), Wait)
    holder.release(a)
    holder.release(a)  # twice is harmless
    c = other.try_acquire([key])
    assert isinstance(c, Permit)
    assert isinstance(other.try_acquire([key]), Wait)
    clock.now += 3  # b expired (renewed to 18 s, none since): free again, and not revived
    assert holder.heartbeat() == 0
    assert isinstance(other.try_acquire([key]), Permit)
    assert other.release_all() == 2


# ------------------------------------------------------------------ all or nothing
def test_acquisition_is_all_or_nothing(db: Database) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock)
    slot = LimitKey.parse("provider:http://gpu:11434", 1)
    rate = LimitKey.parse("actor:a", "2/min")
    tokens = LimitKey.parse("actor:a", "100 tokens/min")
    held = limiter.try_acquire([slot])
    assert isinstance(held, Permit)
    for _ in range(3):  # the slot is taken: rate and tokens must not be consumed
        wait = limiter.try_acquire([rate, tokens, slot], tokens=60)
        assert isinstance(wait, Wait) and wait.blocked == (slot,)
    limiter.release(held)
    both = limiter.try_acquire([rate, tokens, slot], tokens=60)
    assert isinstance(both, Permit)
    assert set(both.keys) == {rate, tokens, slot}
    # now the token key is short: the free slot and the request rate are not taken
    wait = limiter.try_acquire([rate, tokens, slot], tokens=60)
    assert isinstance(wait, Wait)
    assert set(wait.blocked) == {tokens, slot}
    limiter.release(both)
    wait = limiter.try_acquire([rate, tokens, slot], tokens=60)
    assert isinstance(wait, Wait) and wait.blocked == (tokens,)
    assert wait.seconds == pytest.approx(60.0)
    assert isinstance(limiter.try_acquire([slot]), Permit)
    assert isinstance(limiter.try_acquire([rate]), Permit)  # the second request of 2/min


def test_a_saturated_key_does_not_block_other_keys(db: Database) -> None:
    limiter = Limiter(db, "w")
    busy, free = LimitKey.parse("actor:busy", "1/min"), LimitKey.parse("actor:free", "100/s")
    slot = LimitKey.parse("global", 4)
    assert isinstance(limiter.try_acquire([busy]), Permit)

    async def scenario() -> float:
        waiting = asyncio.create_task(limiter.acquire([busy, slot]))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        permits = [await limiter.acquire([free, slot]) for _ in range(4)]
        took = time.perf_counter() - started
        assert not waiting.done()  # still waiting, holding no slot: all four were free
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for p in permits:
            limiter.release(p)
        return took

    assert asyncio.run(scenario()) < 1.0


def test_postgres_disjoint_keys_do_not_share_a_lock(backend: Backend, db: Database) -> None:
    if backend.name != "postgres":
        pytest.skip("SQLite serialises every writer by design")
    a, b = LimitKey.parse("actor:a", 1), LimitKey.parse("actor:b", 1)
    limiter = Limiter(db, "w")
    limiter.release(_permit(limiter.try_acquire([a, b])))  # create both lock rows
    other = connect(backend.url())
    try:
        with other.tx() as tx:
            tx.q("limit_lock", keys=[a.id])  # a transaction sits on a's lock row
            done = threading.Event()
            worker = threading.Thread(
                target=lambda: (limiter.release(_permit(limiter.try_acquire([b]))), done.set())
            )
            worker.start()
            assert done.wait(timeout=5), "b waited for a's lock"
            worker.join()
    finally:
        other.close()


def _permit(result: Permit | Wait) -> Permit:
    assert isinstance(result, Permit), result
    return result


# ------------------------------------------------------------------ tokens
def test_token_estimate_then_settle(db: Database) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock)
    key = LimitKey.parse("actor:gpt", "100 tokens/min")
    first = _permit(limiter.try_acquire([key], tokens=60))
    wait = limiter.try_acquire([key], tokens=50)
    assert isinstance(wait, Wait) and "60 of 100 tokens" in wait.reason
    limiter.settle(first, 30)  # the call used less than estimated: room for 50 now
    second = _permit(limiter.try_acquire([key], tokens=50))
    assert isinstance(limiter.try_acquire([key], tokens=30), Wait)
    assert isinstance(limiter.try_acquire([key], tokens=20), Permit)  # exactly 100
    # more than estimated: the window is over-full until the extra leaves it
    clock.now += 10
    limiter.release(second, tokens_used=90)
    wait = limiter.try_acquire([key])  # tokens=0 still needs some budget left
    assert isinstance(wait, Wait) and "140 of 100 tokens" in wait.reason
    assert wait.seconds == pytest.approx(50.0)  # when the grants at t leave the window
    clock.now += 50
    assert isinstance(limiter.try_acquire([key], tokens=100), Permit)
    with pytest.raises(LimitUnsatisfiable, match="101 tokens"):
        limiter.try_acquire([key], tokens=101)


# ------------------------------------------------------------------ waiting
def test_acquire_sleeps_for_the_returned_wait(db: Database) -> None:
    limiter = Limiter(db, "w")
    key = LimitKey.parse("actor:a", "2/0.3s")
    tries = 0
    original = limiter.try_acquire

    def counting(*args: Any, **kwargs: Any) -> Permit | Wait:
        nonlocal tries
        tries += 1
        return original(*args, **kwargs)

    limiter.try_acquire = counting  # type: ignore[method-assign]

    async def scenario() -> float:
        await limiter.acquire([key])
        await limiter.acquire([key])
        started = time.perf_counter()
        await limiter.acquire([key])
        return time.perf_counter() - started

    waited = asyncio.run(scenario())
    assert 0.2 < waited < 0.6
    assert tries <= 5  # two grants, then one wait and (nearly always) one retry


def test_acquire_times_out_naming_the_limit(db: Database) -> None:
    limiter = Limiter(db, "w")
    key = LimitKey.parse("actor:slow", "1/hour")
    _permit(limiter.try_acquire([key]))
    started = time.perf_counter()
    with pytest.raises(LimitTimeout, match="actor:slow 1/hour") as info:
        asyncio.run(limiter.acquire([key], timeout=0.2))
    assert 0.15 < time.perf_counter() - started < 1.0
    assert info.value.wait.key == key
    assert info.value.wait.seconds > 3500


def test_a_local_release_wakes_a_waiter_at_once(db: Database) -> None:
    limiter = Limiter(db, "w", poll_interval=2.0)
    key = LimitKey.parse("global", 1)
    held = _permit(limiter.try_acquire([key]))

    async def scenario() -> float:
        waiter = asyncio.create_task(limiter.acquire([key]))
        await asyncio.sleep(0.4)
        released = time.perf_counter()
        await asyncio.to_thread(limiter.release, held)
        await waiter
        return time.perf_counter() - released

    # the waiter's own polls back off (0.01, 0.02, ... s, +-20%): none falls in 0.40-0.50 s
    assert asyncio.run(scenario()) < 0.08


def test_a_lagging_clock_still_records_grants_in_order(db: Database) -> None:
    ahead, behind = Clock(1_000_005.0), Clock(1_000_000.0)
    key = LimitKey.parse("actor:a", "2/10s")
    first = _permit(Limiter(db, "ahead", ahead).try_acquire([key]))
    lagging = Limiter(db, "behind", behind)
    second = _permit(lagging.try_acquire([key]))
    assert second.granted_at == first.granted_at == 1_000_005.0
    wait = lagging.try_acquire([key])
    assert isinstance(wait, Wait) and wait.seconds == pytest.approx(10.0)


def test_a_cancelled_acquire_gives_back_what_its_thread_got(db: Database) -> None:
    limiter = Limiter(db, "w")
    key = LimitKey.parse("global", 1)
    original = limiter.try_acquire

    def slow(*args: Any, **kwargs: Any) -> Permit | Wait:
        time.sleep(0.2)
        return original(*args, **kwargs)

    limiter.try_acquire = slow  # type: ignore[method-assign]

    async def scenario() -> None:
        task = asyncio.create_task(limiter.acquire([key]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.4)  # the thread granted, then the permit went back

    asyncio.run(scenario())
    assert isinstance(original([key]), Permit)


def test_keep_alive_heartbeats_until_cancelled(db: Database) -> None:
    limiter = Limiter(db, "w", slot_ttl=0.3)
    key = LimitKey.parse("global", 1)

    async def scenario() -> Permit | Wait:
        beats = asyncio.create_task(limiter.keep_alive())
        _permit(limiter.try_acquire([key]))
        await asyncio.sleep(0.6)  # twice the slot's lifetime
        beats.cancel()
        return Limiter(db, "other").try_acquire([key])

    assert isinstance(asyncio.run(scenario()), Wait)


def test_no_keys_is_granted_without_the_database(db: Database) -> None:
    permit = Limiter(db, "w").try_acquire([])
    assert isinstance(permit, Permit) and permit.keys == ()


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    for child in mp.active_children():
        child.kill()
