"""Per-model fault rates, and a hidden capacity: 429 past `capacity` requests in flight,
latency growing in proportion past `knee` (what adaptive concurrency has to find)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from sim.conftest import SKILLS_SCHEMA, FakeTime, MakeSim
from turing.errors import ConfigError
from turing.sim import ModelLatency, SimConfig
from turing.sim.engine import Call, Engine

FLAT = ModelLatency(ttft_s=1.0, tokens_per_s=0.0, jitter=0.0)


def call(model: str = "qwen2.5:7b", text: str = "posting_id: 7") -> Call:
    messages = [{"role": "user", "content": text}]
    return Call("ollama", "/api/chat", model, messages, schema=SKILLS_SCHEMA)


def test_model_faults_replace_the_global_rates_for_that_model_only() -> None:
    config = SimConfig.profile(
        "fast", faults={}, model_faults={"qwen2.5:3b": {"missing_field": 1.0}}
    )
    engine = Engine(config)
    small = [engine.plan(call("qwen2.5:3b", f"posting_id: {i}")) for i in range(20)]
    large = [engine.plan(call("gpt-4o", f"posting_id: {i}")) for i in range(20)]
    assert all(p.fault == "missing_field" for p in small)
    assert all(p.fault is None for p in large)
    assert engine.snapshot()["faults"]["missing_field"] == 20


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_faults": {"m": {"nonsense": 0.1}}}, "nonsense"),
        ({"model_faults": {"m": {"http_500": 0.7, "empty": 0.7}}}, "sum to <= 1"),
        ({"capacity": -1}, "must not be negative"),
        ({"knee": -2}, "must not be negative"),
    ],
)
def test_bad_capacity_and_model_fault_settings_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        SimConfig.profile("fast", **overrides)


def test_a_request_past_the_capacity_is_answered_429_and_counted_apart() -> None:
    engine = Engine(SimConfig.profile("fast", capacity=2))
    first, second = engine.plan(call(text="a")), engine.plan(call(text="b"))
    third = engine.plan(call(text="c"))
    assert (first.fault, second.fault, third.fault) == (None, None, "http_429")
    engine.finish(third)
    engine.finish(first)  # room again: the next request is served
    assert engine.plan(call(text="d")).fault is None
    stats = engine.snapshot()
    assert stats["over_capacity"] == 1 and stats["faults"]["http_429"] == 0
    assert stats["peak_in_flight"] == 3


def test_latency_grows_in_proportion_past_the_knee() -> None:
    engine = Engine(SimConfig.profile("fast", knee=2, default_latency=FLAT))
    plans = [engine.plan(call(text=str(i))) for i in range(4)]
    assert [p.ttft_s for p in plans] == [1.0, 1.0, 1.5, 2.0]


def test_no_capacity_and_no_knee_change_nothing() -> None:
    engine = Engine(SimConfig.profile("fast", default_latency=FLAT))
    plans = [engine.plan(call(text=str(i))) for i in range(50)]
    assert {p.fault for p in plans} == {None} and {p.ttft_s for p in plans} == {1.0}


def test_over_capacity_over_http_is_a_429_with_retry_after(make_sim: MakeSim) -> None:
    """The first request is held in flight (the test holds the simulator's clock); the
    second finds the capacity used and gets a 429 at once."""
    time = FakeTime(gated=True)
    sim = make_sim(time_scale=1.0, capacity=1, default_latency=FLAT, time=time)

    async def go() -> tuple[int, int, str | None]:
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
            body = {"model": "qwen2.5:7b", "stream": False}
            held = asyncio.create_task(
                client.post(
                    "/api/chat", json=body | {"messages": [{"role": "user", "content": "a"}]}
                )
            )
            for _ in range(1000):
                if (await asyncio.to_thread(sim.stats))["in_flight"] == 1:
                    break
                await asyncio.sleep(0.01)
            refused = await client.post(
                "/api/chat", json=body | {"messages": [{"role": "user", "content": "b"}]}
            )
            time.gate.set()
            served = await held
            return served.status_code, refused.status_code, refused.headers.get("Retry-After")

    served, refused, retry_after = asyncio.run(go())
    assert (served, refused) == (200, 429) and retry_after is not None
    assert sim.stats()["over_capacity"] == 1


def test_an_adaptive_actor_backs_off_from_a_hidden_capacity(make_sim: MakeSim) -> None:
    """40 calls at once through the Ollama provider, ceiling 16, against a simulator that
    refuses a fourth call in flight: every call gets through (429s are retried), the limit
    came down from where slow start took it, and no place is left held."""
    from turing import Message, ModelRequest
    from turing.actors.adaptive import AdaptiveLimit
    from turing.actors.managed import ManagedActor
    from turing.actors.settings import ActorSettings
    from turing.providers import create

    latency = ModelLatency(ttft_s=0.02, tokens_per_s=0.0, jitter=0.0)
    sim = make_sim(time_scale=1.0, capacity=3, default_latency=latency, retry_after_s=0.01)
    settings = ActorSettings(
        "ollama", "qwen2.5:7b", base_url=sim.url, max_retries=50, concurrency="adaptive",
        max_concurrency=16,
    )  # fmt: skip
    limit = AdaptiveLimit(16, initial=8)
    actor = ManagedActor(create(settings), settings, adaptive=limit)

    async def go() -> list[Any]:
        def ask(i: int) -> ModelRequest:
            text = f"posting_id: {i}"
            return ModelRequest((Message("user", text),), schema=SKILLS_SCHEMA, timeout=30)

        return await asyncio.gather(*(actor.complete(ask(i)) for i in range(40)))

    answers = asyncio.run(go())
    stats = sim.stats()
    assert len(answers) == 40 and stats["over_capacity"] > 0
    assert limit.decreases >= 1 and limit.limit < 8 and limit.in_flight == 0
    assert stats["peak_in_flight"] <= 16
