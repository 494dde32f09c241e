"""Shared limits through the database, on both backends: exact sliding windows under threads
and real processes, concurrency across processes, a killed holder's slots reclaimed,
all-or-nothing acquisition, independence of keys, token settlement, precise waits.

No assertion here depends on how fast the machine is: exactness is checked on clocks the test
moves by hand (shared with worker processes through shared memory), and `acquire`'s sleeps
and waits are replaced where a test is about them. Achieved rates are measured by
`benchmarks/ratelimit.py`."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from turing.limits import limiter as limiter_module
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


class SharedClock:
    """A clock the test moves by hand, shared with worker processes (shared memory)."""

    def __init__(self, value: Any) -> None:
        self.value = value  # a multiprocessing RawValue("d")

    def __call__(self) -> float:
        return float(self.value.value)


class Asyncio:
    """The asyncio module as the limiter sees it, with some of its functions replaced."""

    def __init__(self, **replaced: Any) -> None:
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def counted(limiter: Limiter) -> list[Permit | Wait]:
    """Record every result of `limiter.try_acquire` (also when `acquire` calls it)."""
    results: list[Permit | Wait] = []
    original = limiter.try_acquire

    def recording(*args: Any, **kwargs: Any) -> Permit | Wait:
        result = original(*args, **kwargs)
        results.append(result)
        return result

    limiter.try_acquire = recording  # type: ignore[method-assign]
    return results


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
START = 1_000_000.0  # where the shared clocks start


@dataclass(frozen=True)
class Job:
    """What one worker process does: `tasks` acquirers on one limit, `rounds` times."""

    url: str
    who: str
    limit: str | int
    tasks: int
    rounds: int


def _take_until_refused(job: Job, now: Any, phases: Any) -> None:
    """Each round, once the test has set the shared clock: `tasks` threads take permits on
    one key (none released) until refused, which is final while the clock stands still; log
    the grant times."""
    db = connect(job.url)
    limiter = Limiter(db, holder=job.who, clock=SharedClock(now))
    key = LimitKey.parse("actor:shared", job.limit)

    def take() -> list[float]:
        got = []
        while isinstance(result := limiter.try_acquire([key]), Permit):
            got.append(result.granted_at)
        return got

    phases.wait(timeout=60)
    with ThreadPoolExecutor(job.tasks) as pool:
        for _ in range(job.rounds):
            phases.wait(timeout=60)
            parts = [pool.submit(take) for _ in range(job.tasks)]
            _log(db, job.who, [(t, t) for part in parts for t in part.result()])
            phases.wait(timeout=60)
    db.close()


def _slot_worker(job: Job, go: Any) -> None:
    """Hold a concurrency slot for 15 ms, `rounds` times per task; log each holding interval."""
    who, tasks = job.who, job.tasks
    db = connect(job.url)
    limiter = Limiter(db, holder=who)
    key = LimitKey.parse("provider:http://model-host:11434", job.limit)
    limiter.release(_permit(limiter.try_acquire([key])))  # connect, make the lock row
    go.wait(timeout=60)

    async def hammer() -> list[tuple[float, float]]:
        held = []
        for _ in range(job.rounds):
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


def _holder_then_hang(url: str, now: Any, ready: Any) -> None:
    """Take the only slot, say so, and hang until killed (no heartbeat, no release)."""
    db = connect(url)
    limiter = Limiter(db, holder="doomed", clock=SharedClock(now), slot_ttl=0.6)
    permit = limiter.try_acquire([LimitKey.parse("actor:single", 1)])
    assert isinstance(permit, Permit)
    ready.set()
    time.sleep(60)


def _run_processes(
    target: Any, jobs: list[Job], *args: Any, rounds: Sequence[Callable[[], None]] = ()
) -> None:
    """`target(job, *args, barrier)` in a process per job. All meet at the barrier once ready;
    then, per round, the test runs its function and they meet twice more (go, done)."""
    barrier = SPAWN.Barrier(len(jobs) + 1)
    procs = [SPAWN.Process(target=target, args=(job, *args, barrier)) for job in jobs]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=60)
        for before in rounds:
            before()
            barrier.wait(timeout=60)  # go
            barrier.wait(timeout=60)  # done
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"worker exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()


def _grants_per_phase(db: Database, url: str, limit: str | int, offsets: list[float]) -> list[int]:
    """Three processes x four threads take permits on one key until refused, once per offset
    of the shared clock from START; how many each phase granted."""
    now = SPAWN.RawValue("d", START)
    jobs = [Job(url, f"p{i}", limit, 4, len(offsets)) for i in range(3)]

    def move(offset: float) -> Callable[[], None]:
        return lambda: setattr(now, "value", START + offset)

    _run_processes(_take_until_refused, jobs, now, rounds=[move(o) for o in offsets])
    granted = Counter(r["t0"] for r in _logged(db))
    assert set(granted) <= {START + offset for offset in offsets}
    return [granted[START + offset] for offset in offsets]


# ------------------------------------------------------------------ rate limits
def test_rate_limit_is_exact_across_processes(backend: Backend, db: Database) -> None:
    """3 processes x 4 threads on one "40/0.5s" key, on a shared clock the test moves: each
    half-second window grants exactly 40, and none in between."""
    _log_table(db)
    offsets = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert _grants_per_phase(db, backend.url(), "40/0.5s", offsets) == [40, 0, 40, 0, 40]
    assert max_in_window([r["t0"] for r in _logged(db)], 0.5) == 40


def test_rate_limit_is_exact_under_threads(backend: Backend, db: Database) -> None:
    """4 threads, each its own connection and holder, through the synchronous API, on one
    clock the test moves: exactly 25 per quarter-second window."""
    clock = Clock()
    key = LimitKey.parse("workflow:w", "25/0.25s")
    offsets = [0.0, 0.125, 0.25, 0.5]
    phases = threading.Barrier(5)
    granted: list[float] = []
    refusals: list[Wait] = []

    def hammer(who: str) -> None:
        own = connect(backend.url())
        limiter = Limiter(own, holder=who, clock=clock)
        for _ in offsets:
            phases.wait(timeout=60)
            while isinstance(result := limiter.try_acquire([key]), Permit):
                granted.append(result.granted_at)
            refusals.append(result)
            phases.wait(timeout=60)
        own.close()

    threads = [threading.Thread(target=hammer, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    start = clock.now
    for offset in offsets:
        clock.now = start + offset
        phases.wait(timeout=60)
        phases.wait(timeout=60)
    for t in threads:
        t.join()
    per_phase = Counter(granted)
    assert [per_phase[start + offset] for offset in offsets] == [25, 0, 25, 25]
    assert len(per_phase) == 3 and max_in_window(granted, 0.25) == 25
    assert len(refusals) == 16 and all(r.seconds > 0 for r in refusals)


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
    """3 processes x 3 tasks acquire and release one 3-slot key 10 times each: never more
    than 3 held at once, every slot released."""
    _log_table(db)
    _run_processes(
        _slot_worker,
        [Job(backend.url(), f"p{i}", 3, 3, 10) for i in range(3)],
    )
    rows = _logged(db)
    assert len(rows) == 90 and {r["who"] for r in rows} == {"p0", "p1", "p2"}
    assert max_overlap([(r["t0"], r["t1"]) for r in rows]) <= 3
    with db.read() as tx:
        assert tx.sql("SELECT COUNT(*) AS n FROM turing_limit_slots") == [{"n": 0}]


def test_concurrency_limit_is_exact_across_processes(backend: Backend, db: Database) -> None:
    """3 processes x 4 threads take slots of one 3-slot key and keep them: exactly 3 are
    granted; none more while they live (60 s), exactly 3 again once they expired."""
    _log_table(db)
    assert _grants_per_phase(db, backend.url(), 3, [0.0, 30.0, 61.0]) == [3, 0, 3]


def test_slots_of_a_killed_holder_are_reclaimed(backend: Backend, db: Database) -> None:
    now = SPAWN.RawValue("d", START)
    ready = SPAWN.Event()
    proc = SPAWN.Process(target=_holder_then_hang, args=(backend.url(), now, ready))
    proc.start()
    try:
        assert ready.wait(timeout=60)
        key = LimitKey.parse("actor:single", 1)
        limiter = Limiter(db, "survivor", SharedClock(now))
        wait = limiter.try_acquire([key])
        assert isinstance(wait, Wait)
        assert "1 of 1 slots held" in wait.reason
        assert wait.seconds == pytest.approx(0.1)  # a polling hint: the slot expires in 0.6 s
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=10)
        now.value = START + 0.5
        assert isinstance(limiter.try_acquire([key]), Wait)  # dead, but its slot still counts
        now.value = START + 0.6
        assert isinstance(limiter.try_acquire([key]), Permit)  # the 0.6 s slot expired
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
    results = counted(limiter)

    async def scenario() -> list[Permit | Wait]:
        waiting = asyncio.create_task(limiter.acquire([busy, slot]))
        for _ in range(1000):  # until the waiter was refused once (at most ~10 s)
            if results:
                break
            await asyncio.sleep(0.01)
        assert isinstance(results[0], Wait) and results[0].blocked == (busy,)
        got = [limiter.try_acquire([free, slot]) for _ in range(4)]
        assert not waiting.done()  # still waiting, holding no slot: all four were free
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return got

    got = asyncio.run(scenario())
    assert all(isinstance(p, Permit) for p in got)


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
            assert done.wait(timeout=30), "b waited for a's lock"  # (it would wait forever)
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
def test_acquire_sleeps_for_the_returned_wait(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock)
    key = LimitKey.parse("actor:a", "2/0.3s")
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # time passes on the test's clock only
        slept.append(seconds)
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr(limiter_module, "asyncio", Asyncio(sleep=sleep))
    results = counted(limiter)

    async def scenario() -> list[Permit]:
        return [await limiter.acquire([key]) for _ in range(3)]

    first, _, third = asyncio.run(scenario())
    assert slept == [pytest.approx(0.3, abs=0.001)]  # until the first grant left the window
    assert [type(r) for r in results] == [Permit, Permit, Wait, Permit]  # one retry
    assert third.granted_at == clock.now and third.granted_at - first.granted_at >= 0.3


def test_acquire_times_out_naming_the_limit(db: Database) -> None:
    limiter = Limiter(db, "w")
    key = LimitKey.parse("actor:slow", "1/hour")
    _permit(limiter.try_acquire([key]))
    with pytest.raises(LimitTimeout, match="actor:slow 1/hour") as info:
        asyncio.run(limiter.acquire([key], timeout=0.2))
    assert "no permit within 0.2s" in str(info.value)
    assert info.value.wait.key == key
    assert info.value.wait.seconds > 3500


def test_a_local_release_wakes_a_waiter_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = Limiter(db, "w", poll_interval=2.0)
    key = LimitKey.parse("global", 1)
    held = _permit(limiter.try_acquire([key]))
    real_wait = asyncio.wait

    async def no_polling(fs: Any, timeout: float | None = None) -> Any:
        return await real_wait(fs)  # the waiter's polls never time out: only a wake-up ends one

    monkeypatch.setattr(limiter_module, "asyncio", Asyncio(wait=no_polling))
    results = counted(limiter)

    async def scenario() -> Permit:
        waiter = asyncio.create_task(limiter.acquire([key]))
        for _ in range(1000):  # until the waiter was refused (at most ~10 s)
            if results:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(limiter.release, held)
        return await asyncio.wait_for(waiter, 30)  # (it would wait forever)

    assert isinstance(asyncio.run(scenario()), Permit)
    assert [type(r) for r in results] == [Wait, Permit]


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
    original, release = limiter.try_acquire, limiter.release
    entered, proceed, released = threading.Event(), threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Permit | Wait:
        entered.set()
        proceed.wait(30)
        return original(*args, **kwargs)

    def releasing(*args: Any, **kwargs: Any) -> None:
        release(*args, **kwargs)
        released.set()

    limiter.try_acquire = slow  # type: ignore[method-assign]
    limiter.release = releasing  # type: ignore[method-assign]

    async def scenario() -> None:
        task = asyncio.create_task(limiter.acquire([key]))
        assert await asyncio.to_thread(entered.wait, 30)
        task.cancel()  # while its thread is in try_acquire
        with pytest.raises(asyncio.CancelledError):
            await task
        proceed.set()  # the thread grants, then the permit goes back
        assert await asyncio.to_thread(released.wait, 30)

    asyncio.run(scenario())
    assert isinstance(original([key]), Permit)


def test_keep_alive_heartbeats_until_cancelled(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    limiter = Limiter(db, "w", clock, slot_ttl=0.3)
    key = LimitKey.parse("global", 1)
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # time passes on the test's clock only
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr(limiter_module, "asyncio", Asyncio(sleep=sleep))
    beaten = _heartbeats(limiter)

    async def scenario() -> Permit | Wait:
        _permit(limiter.try_acquire([key]))
        acquired = clock.now
        beats = asyncio.create_task(limiter.keep_alive())  # every 0.1 s of the test's clock
        for _ in range(1000):  # twice the slot's lifetime (at most ~10 s)
            if clock.now >= acquired + 0.6 and beaten:
                break
            await real_sleep(0.01)
        beats.cancel()
        assert clock.now >= acquired + 0.6  # without the heartbeats the slot would be free
        return Limiter(db, "other", clock).try_acquire([key])

    assert isinstance(asyncio.run(scenario()), Wait)
    assert beaten and all(n == 1 for n in beaten)


def _heartbeats(limiter: Limiter) -> list[int]:
    """Record how many slots each heartbeat of `limiter` renewed."""
    renewed: list[int] = []
    original = limiter.heartbeat

    def recording() -> int:
        n = original()
        renewed.append(n)
        return n

    limiter.heartbeat = recording  # type: ignore[method-assign]
    return renewed


def test_no_keys_is_granted_without_the_database(db: Database) -> None:
    permit = Limiter(db, "w").try_acquire([])
    assert isinstance(permit, Permit) and permit.keys == ()


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    for child in mp.active_children():
        child.kill()
