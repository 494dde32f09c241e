"""Latency, model residency and swaps (K models loaded at once, LRU eviction)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from sim.conftest import FakeTime, MakeSim
from turing.sim import ModelLatency, Simulator


def chat(sim: Simulator, model: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": False}
    r = httpx.post(sim.url + "/api/chat", json={**body, **extra}, timeout=10)
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def test_interleaving_two_models_on_one_slot_swaps_more_than_grouping(make_sim: MakeSim) -> None:
    interleaved = make_sim("gpu", time_scale=0.0)
    for i in range(3):
        for model in ("qwen2.5:7b", "llama3.1:8b"):
            chat(interleaved, model, f"item {i}")
    grouped = make_sim("gpu", time_scale=0.0)
    for model in ("qwen2.5:7b", "llama3.1:8b"):
        for i in range(3):
            chat(grouped, model, f"item {i}")
    a, b = interleaved.stats(), grouped.stats()
    assert (a["swaps"], a["evictions"]) == (6, 5)
    assert (b["swaps"], b["evictions"]) == (2, 1)
    assert a["resident"] == b["resident"] == ["llama3.1:8b"]


def test_load_duration_reports_the_swap(make_sim: MakeSim) -> None:
    sim = make_sim("gpu", time_scale=0.0)
    assert chat(sim, "qwen2.5:7b")["load_duration"] == 2_000_000_000
    assert chat(sim, "qwen2.5:7b", "again")["load_duration"] == 0
    assert chat(sim, "qwen2.5:3b")["load_duration"] == 2_000_000_000


def test_lru_eviction_with_two_slots(make_sim: MakeSim) -> None:
    sim = make_sim(models_resident=2)
    for model in ("qwen2.5:7b", "qwen2.5:3b", "qwen2.5:7b", "llama3.1:8b"):
        chat(sim, model)
    stats = sim.stats()
    assert stats["resident"] == ["qwen2.5:7b", "llama3.1:8b"]  # 3b was least recently used
    assert stats["swaps"] == 3 and stats["evictions"] == 1
    ps = httpx.get(sim.url + "/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["qwen2.5:7b", "llama3.1:8b"]


def test_swap_waits_for_in_flight_requests_and_costs_time(make_sim: MakeSim) -> None:
    """Two qwen requests share one load; a llama request that arrives while they run waits
    for both to finish, evicts qwen and pays its own swap. The modelled time passes on a
    clock the test holds until the llama request is queued, so the order never depends on
    how fast the machine is."""
    latency = ModelLatency(ttft_s=0.15, tokens_per_s=0.0, jitter=0.0)
    time = FakeTime(gated=True)
    sim = make_sim("gpu", time_scale=1.0, swap_s=0.1, default_latency=latency, time=time)
    events: list[tuple[str, str]] = []
    load, unload = sim.engine.load, sim.engine.unload

    async def loading(plan: Any) -> None:
        await load(plan)
        events.append(("loaded", plan.call.model))

    def unloading(plan: Any) -> None:
        unload(plan)
        events.append(("unloaded", plan.call.model))

    sim.engine.load = loading  # type: ignore[method-assign]
    sim.engine.unload = unloading  # type: ignore[method-assign]

    async def in_flight(n: int) -> dict[str, Any]:
        for _ in range(1000):  # at most ~10 s
            stats = await asyncio.to_thread(sim.stats)
            if stats["in_flight"] == n:
                return stats
            await asyncio.sleep(0.01)
        raise AssertionError(f"never {n} requests in flight")

    async def go() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:

            async def one(model: str, text: str) -> dict[str, Any]:
                messages = [{"role": "user", "content": text}]
                body = {"model": model, "messages": messages, "stream": False}
                r = await client.post("/api/chat", json=body)
                r.raise_for_status()
                answer: dict[str, Any] = r.json()
                return answer

            qwen = [asyncio.create_task(one("qwen2.5:7b", t)) for t in "ab"]
            await in_flight(2)
            llama = asyncio.create_task(one("llama3.1:8b", "c"))
            queued = await in_flight(3)  # llama is planned and queued behind the two
            time.gate.set()
            return queued, await asyncio.gather(*qwen, llama)

    queued, (a, b, c) = asyncio.run(go())
    assert queued["resident"] == ["qwen2.5:7b"] and queued["swaps"] == 1
    qwen_done = [i for i, e in enumerate(events) if e == ("unloaded", "qwen2.5:7b")]
    assert len(qwen_done) == 2 and events.index(("loaded", "llama3.1:8b")) > max(qwen_done)
    # one load (0.1 s) shared by the qwen requests; llama paid its own
    assert sorted([a["load_duration"], b["load_duration"]]) == [0, 100_000_000]
    assert c["load_duration"] == 100_000_000
    assert {r["prompt_eval_duration"] for r in (a, b, c)} == {150_000_000}
    stats = sim.stats()
    assert stats["swaps"] == 2 and stats["evictions"] == 1 and stats["in_flight"] == 0


def test_latency_model_and_time_scale(make_sim: MakeSim) -> None:
    latency = ModelLatency(ttft_s=0.1, tokens_per_s=1000.0, jitter=0.0)
    for scale in (1.0, 0.5, 0.0):
        time = FakeTime()
        sim = make_sim("default", swap_s=0.0, default_latency=latency, time_scale=scale, time=time)
        out = chat(sim, "qwen2.5:7b", "x" * 40)
        assert out["prompt_eval_duration"] == 100_000_000  # reported unscaled
        assert abs(out["eval_duration"] / 1e9 - out["eval_count"] / 1000.0) < 1e-6
        assert time.slept == pytest.approx(scale * (0.1 + out["eval_count"] / 1000.0))


def test_per_model_latency_and_jitter(make_sim: MakeSim) -> None:
    models = {"qwen2.5:3b": ModelLatency(ttft_s=0.01, tokens_per_s=100.0, jitter=0.5)}
    sim = make_sim(models=models, time_scale=0.0)
    ttfts = {chat(sim, "qwen2.5:3b", f"t{i}")["prompt_eval_duration"] for i in range(8)}
    assert len(ttfts) > 1 and all(5_000_000 <= t <= 15_000_000 for t in ttfts)
    assert chat(sim, "qwen2.5:7b")["prompt_eval_duration"] != 10_000_000  # the default
