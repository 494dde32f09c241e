"""ManagedActor: retries with backoff and Retry-After, permanent errors, per-call timeout,
concurrency bound, cost, and the response cache (dry runs only read it)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

import pytest

from turing import ActorError, FakeModel, Message, ModelRequest, ModelResponse, Usage
from turing.actors.managed import ManagedActor, backoff
from turing.actors.settings import ActorSettings
from turing.cache import MemoryCache, cache_key

SETTINGS = ActorSettings("fake", "m1", price_input=2.0, price_output=10.0, max_retries=3)


def request(**kw: Any) -> ModelRequest:
    return ModelRequest(messages=(Message("user", "hi"),), **kw)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def answer(text: str = '{"a": 1}', tokens: tuple[int, int] = (1000, 500)) -> ModelResponse:
    return ModelResponse(text, Usage(tokens[0], tokens[1], 1), "m1")


def test_cost_from_prices_per_million() -> None:
    actor = ManagedActor(FakeModel([answer()]), SETTINGS)
    out = run(actor.complete(request(temperature=0.7)))
    assert out.usage.cost == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    assert (out.usage.calls, out.usage.retries, out.usage.cached) == (1, 0, 0)


def test_transient_errors_are_retried_with_backoff_and_retry_after() -> None:
    sleeps = Sleeps()
    fake = FakeModel(
        [
            ActorError("boom", transient=True, kind="server"),
            ActorError("slow down", transient=True, retry_after=7.0, kind="rate_limit"),
            answer(),
        ]
    )
    actor = ManagedActor(fake, SETTINGS, sleep=sleeps, seed=1)
    out = run(actor.complete(request(temperature=0.7)))
    assert out.text == '{"a": 1}' and out.usage.retries == 2
    assert len(fake.requests) == 3
    assert 0.375 <= sleeps.delays[0] <= 0.625  # 0.5 s +- 25 %
    assert sleeps.delays[1] == 7.0  # the server's Retry-After, not our backoff


def test_retries_are_bounded_and_say_so() -> None:
    fake = FakeModel([ActorError("down", transient=True, kind="connection")] * 4)
    actor = ManagedActor(fake, SETTINGS, sleep=Sleeps())
    with pytest.raises(ActorError, match=r"down \(after 3 retries\)") as info:
        run(actor.complete(request(temperature=0.7)))
    assert info.value.kind == "connection" and len(fake.requests) == 4


def test_permanent_errors_fail_at_once() -> None:
    fake = FakeModel([ActorError("model m1 not found", kind="not_found")])
    actor = ManagedActor(fake, SETTINGS, sleep=Sleeps())
    with pytest.raises(ActorError, match="not found"):
        run(actor.complete(request(temperature=0.7)))
    assert len(fake.requests) == 1


def test_timeout_per_call_is_transient_and_retried() -> None:
    calls = {"n": 0}

    def slow_then_fast(req: ModelRequest) -> Any:
        calls["n"] += 1
        return answer()

    class Slow(FakeModel):
        async def complete(self, req: ModelRequest) -> ModelResponse:
            if not self.requests:
                self.requests.append(req)
                await asyncio.sleep(5)
            return await super().complete(req)

    actor = ManagedActor(Slow(slow_then_fast), SETTINGS, sleep=Sleeps())
    out = run(actor.complete(request(temperature=0.7, timeout=0.05)))
    assert out.usage.retries == 1 and calls["n"] == 1


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(3)
    delays = [backoff(n, None, rng) for n in range(12)]
    assert delays[0] < delays[3] < delays[6]
    assert max(delays) <= 30.0 * 1.25
    assert backoff(0, 500.0, rng) == 120.0


def test_settings_override_the_request() -> None:
    fake = FakeModel([answer()])
    tuned = SETTINGS.with_(temperature=0.0, seed=9, max_tokens=77, timeout=3.0)
    run(ManagedActor(fake, tuned).complete(request(temperature=0.9, max_tokens=5)))
    sent = fake.requests[0]
    assert (sent.temperature, sent.seed, sent.max_tokens, sent.timeout) == (0.0, 9, 77, 3.0)


def test_concurrency_is_bounded() -> None:
    state = {"now": 0, "peak": 0}

    class Counting(FakeModel):
        async def complete(self, req: ModelRequest) -> ModelResponse:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.01)
            state["now"] -= 1
            return answer()

    actor = ManagedActor(Counting(), SETTINGS.with_(max_concurrency=2))

    async def many() -> None:
        await asyncio.gather(*(actor.complete(request(temperature=0.5)) for _ in range(8)))

    run(many())
    assert state["peak"] == 2
    run(many())  # a second event loop gets its own semaphore
    assert state["peak"] == 2


def test_cache_hit_makes_no_call_and_costs_nothing() -> None:
    cache = MemoryCache()
    fake = FakeModel([answer()])
    actor = ManagedActor(fake, SETTINGS, cache=lambda: cache)
    first = run(actor.complete(request(temperature=0)))
    assert cache.rows == {}  # not validated yet: nothing kept
    run(actor.accepted(request(temperature=0), first))
    second = run(actor.complete(request(temperature=0)))
    assert len(fake.requests) == 1
    assert second.text == first.text
    assert (second.usage.cached, second.usage.cost, second.usage.total_tokens) == (1, 0.0, 0)
    assert cache.hits == 1


def test_only_deterministic_requests_are_cached() -> None:
    cache = MemoryCache()
    fake = FakeModel([answer(), answer(), answer()])
    actor = ManagedActor(fake, SETTINGS, cache=lambda: cache)
    for _ in range(2):
        hot = request(temperature=0.7)
        run(actor.accepted(hot, run(actor.complete(hot))))
    assert len(fake.requests) == 2 and cache.rows == {}
    seeded = request(temperature=0.7, seed=5)
    run(actor.accepted(seeded, run(actor.complete(seeded))))
    assert len(cache.rows) == 1


def test_dry_run_reads_the_cache_but_never_writes_or_counts() -> None:
    cache = MemoryCache()
    fake = FakeModel([answer(), answer()])
    actor = ManagedActor(fake, SETTINGS, cache=lambda: cache)
    dry = request(temperature=0, dry_run=True)
    run(actor.accepted(dry, run(actor.complete(dry))))
    assert cache.rows == {}
    real = request(temperature=0)
    run(actor.accepted(real, run(actor.complete(real))))
    hit = run(actor.complete(request(temperature=0, dry_run=True)))
    assert hit.usage.cached == 1 and cache.hits == 0


def test_cache_key_covers_messages_parameters_and_schema() -> None:
    base = request(temperature=0)
    variants = [
        request(temperature=0, seed=1),
        request(temperature=0, max_tokens=10),
        request(temperature=0, schema={"type": "object"}),
        ModelRequest(messages=(Message("user", "hello"),), temperature=0),
    ]
    keys = {cache_key("a", "m", v) for v in variants}
    assert len(keys) == 4 and cache_key("a", "m", base) not in keys
    assert cache_key("a", "m", base) != cache_key("b", "m", base)
    assert cache_key("a", "m", base) != cache_key("a", "m2", base)


def test_re_asks_and_retries_are_never_answered_from_the_cache() -> None:
    """Issue 11 (4): a cached answer replayed to a re-ask or a retry is what is being
    corrected. `from_cache=False` (the executor's re-asks and retried tasks) always calls."""
    cache = MemoryCache()
    fake = FakeModel([answer(), answer()])
    actor = ManagedActor(fake, SETTINGS, cache=lambda: cache)
    first = request(temperature=0)
    run(actor.accepted(first, run(actor.complete(first))))
    again = run(actor.complete(replace(first, from_cache=False)))
    assert len(fake.requests) == 2 and again.usage.cached == 0 and cache.hits == 0
