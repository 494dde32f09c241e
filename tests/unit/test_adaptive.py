"""Adaptive concurrency (AIMD per host): grows while calls succeed with the limit in use,
halves on 429/503/timeout, shrinks past the latency knee, never leaves [1, ceiling], one
decrease per round trip; the slot admits at most `limit` calls and always gives its place
back. Time is a fake clock: nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio

import pytest

from turing.actors.adaptive import AdaptiveLimit, AdaptiveLimits, is_overload
from turing.actors.base import ModelRequest, ModelResponse, Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.errors import ActorError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def busy(limit: AdaptiveLimit, clock: Clock, n: int, latency: float = 1.0) -> None:
    """`n` calls that each started now and answer after `latency`, the limit in use."""
    for _ in range(n):
        started = clock.now
        clock.now += latency / 100
        limit.succeeded(latency, started, in_flight=limit.limit)


def test_slow_start_grows_by_one_per_success_up_to_the_ceiling() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=10, clock=clock)
    assert limit.limit == 1
    busy(limit, clock, 4)
    assert limit.limit == 5
    busy(limit, clock, 50)
    assert limit.limit == 10  # never above the ceiling


def test_it_does_not_grow_when_the_limit_is_not_in_use() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=50, initial=20, clock=clock)
    for _ in range(30):
        limit.succeeded(1.0, clock.now, in_flight=3)  # an idle actor: 3 of 20 in use
    assert limit.limit == 20


@pytest.mark.parametrize(
    "error",
    [
        ActorError("rate limited", transient=True, kind="rate_limit"),
        ActorError("server error 503 at http://h: busy", transient=True, kind="server"),
        ActorError("no answer after 5s", transient=True, kind="timeout"),
    ],
)
def test_overload_halves_the_limit(error: ActorError) -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=64, initial=16, clock=clock)
    assert is_overload(error)
    limit.overloaded(started=clock.now)
    assert limit.limit == 8 and limit.decreases == 1


def test_a_500_or_a_refused_connection_is_not_overload() -> None:
    assert not is_overload(ActorError("server error 500 at h: boom", kind="server"))
    assert not is_overload(ActorError("refused", kind="connection"))


def test_never_below_one() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=8, initial=2, clock=clock)
    for _ in range(10):
        clock.now += 1
        limit.overloaded(started=clock.now)
    assert limit.limit == 1


def test_one_decrease_per_round_trip() -> None:
    """A burst of 429s from calls sent under the old limit counts once."""
    clock = Clock()
    limit = AdaptiveLimit(ceiling=64, initial=32, clock=clock)
    sent = clock.now
    clock.now += 1
    for _ in range(10):
        limit.overloaded(started=sent)
    assert limit.limit == 16 and limit.decreases == 1
    clock.now += 1
    limit.overloaded(started=clock.now)  # a call sent after the decrease: counts
    assert limit.limit == 8


def test_after_a_decrease_growth_is_additive() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=64, initial=10, clock=clock)
    limit.overloaded(started=clock.now)  # -> 5, slow start over
    clock.now += 1
    busy(limit, clock, 5)  # +1/limit each: +0.93 over a round trip of 5 calls
    assert limit.limit == 5
    busy(limit, clock, 1)
    assert limit.limit == 6


def test_latency_past_the_knee_shrinks_the_limit() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=64, initial=1, window=4, tolerance=2.0, clock=clock)
    busy(limit, clock, 20, latency=1.0)  # baseline 1 s, the limit grows to 21
    grown = limit.limit
    busy(limit, clock, 2, latency=3.0)  # mean of the last 4 (1+1+3+3)/4 = 2: not above 2x
    assert limit.limit == grown + 2
    busy(limit, clock, 1, latency=3.0)  # mean 2.5 > 2: the host queues
    assert limit.limit == int((grown + 2) * 0.9) and limit.decreases == 1


def test_the_baseline_forgets_old_minimums() -> None:
    clock = Clock()
    limit = AdaptiveLimit(ceiling=8, baseline_s=100.0, window=1, clock=clock)
    limit.succeeded(0.5, clock.now, 1)
    clock.now += 50
    limit.succeeded(2.0, clock.now, 1)
    assert limit.baseline == 0.5
    clock.now += 60
    limit.succeeded(3.0, clock.now, 1)
    assert limit.baseline == 2.0  # 0.5 was seen more than baseline_s ago


def test_limits_are_per_host_and_the_larger_ceiling_holds() -> None:
    limits = AdaptiveLimits()
    a = limits.get("http://127.0.0.1:11434", ceiling=4)
    b = limits.get("http://127.0.0.1:11434/v1", ceiling=16)
    c = limits.get("http://other:11434", ceiling=2)
    assert a is b and a.ceiling == 16 and c is not a and c.ceiling == 2


def test_the_slot_admits_at_most_limit_calls_and_gives_places_back() -> None:
    limit = AdaptiveLimit(ceiling=4, initial=2, clock=Clock())
    order: list[str] = []

    async def call(name: str, gate: asyncio.Event, fail: bool = False) -> None:
        async with limit.slot():
            order.append(f"in {name}")
            await gate.wait()
            order.append(f"out {name}")
            if fail:
                raise RuntimeError("boom")

    async def go() -> None:
        gates = {n: asyncio.Event() for n in "abc"}
        tasks = {
            "a": asyncio.create_task(call("a", gates["a"], fail=True)),
            "b": asyncio.create_task(call("b", gates["b"])),
            "c": asyncio.create_task(call("c", gates["c"])),
        }
        await asyncio.sleep(0)
        assert limit.in_flight == 2 and order == ["in a", "in b"]
        gates["a"].set()  # a fails: its place goes to c
        with pytest.raises(RuntimeError):
            await tasks["a"]
        await asyncio.sleep(0)
        assert order[-1] == "in c" and limit.in_flight == 2
        gates["b"].set()
        gates["c"].set()
        await asyncio.gather(tasks["b"], tasks["c"])
        assert limit.in_flight == 0 and limit.peak == 2

    asyncio.run(go())


def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    limit = AdaptiveLimit(ceiling=1, clock=Clock())

    async def go() -> None:
        gate = asyncio.Event()

        async def hold() -> None:
            async with limit.slot():
                await gate.wait()

        async def wait() -> None:
            async with limit.slot():
                pass

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(wait())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.set()
        await holder
        assert limit.in_flight == 0
        async with limit.slot():  # the place is free again
            assert limit.in_flight == 1

    asyncio.run(go())


class _Host:
    """A provider answering 429 to the third call in flight (a hidden capacity of 2)."""

    identity = "fake:host"

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.refused = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.in_flight += 1
        try:
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight > 2:
                self.refused += 1
                raise ActorError("rate limited", transient=True, kind="rate_limit")
            for _ in range(3):
                await asyncio.sleep(0)
            return ModelResponse("{}", Usage(1, 1, 1))
        finally:
            self.in_flight -= 1


def test_the_managed_actor_calls_under_the_adaptive_limit() -> None:
    """40 calls at once through an actor with ceiling 8: the 429s halve the limit and the
    actor's retries get every call through; never more calls in flight than the ceiling."""
    clock = Clock()
    host = _Host()
    limit = AdaptiveLimit(ceiling=8, initial=8, clock=clock)
    settings = ActorSettings("fake", "m", concurrency="adaptive", max_retries=20)

    async def no_sleep(_: float) -> None:
        clock.now += 1  # a backoff passes on the clock: later tries count as new signals

    actor = ManagedActor(host, settings, adaptive=limit, sleep=no_sleep)

    async def go() -> list[ModelResponse]:
        request = ModelRequest(messages=(), timeout=5)
        return await asyncio.gather(*(actor.complete(request) for _ in range(40)))

    answers = asyncio.run(go())
    assert len(answers) == 40 and host.refused > 0
    assert limit.decreases >= 1 and limit.limit < 8 and host.peak <= 8
    assert limit.in_flight == 0


def test_the_knee_compares_means_so_varied_answer_lengths_do_not_shrink_the_limit() -> None:
    """Latencies of 1 s and 4 s alternating (short and long answers): no single call is the
    baseline, the mean of the window is, and it stays put."""
    clock = Clock()
    limit = AdaptiveLimit(ceiling=64, window=4, tolerance=1.5, clock=clock)
    for i in range(60):
        started = clock.now
        clock.now += 0.01
        limit.succeeded(1.0 if i % 2 else 4.0, started, in_flight=limit.limit)
    assert (limit.decreases, limit.limit) == (0, 61)
