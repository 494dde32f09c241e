"""Latency, model residency and swaps (K models loaded at once, LRU eviction)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import ollama

from sim.conftest import MakeSim
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
    latency = ModelLatency(ttft_s=0.15, tokens_per_s=0.0, jitter=0.0)
    sim = make_sim("gpu", time_scale=1.0, swap_s=0.1, default_latency=latency)

    async def go() -> list[tuple[str, float]]:
        client = ollama.AsyncClient(host=sim.url)
        start = time.monotonic()

        async def one(model: str, text: str, delay: float) -> tuple[str, float]:
            await asyncio.sleep(delay)
            await client.chat(model=model, messages=[{"role": "user", "content": text}])
            return model, time.monotonic() - start

        return await asyncio.gather(
            one("qwen2.5:7b", "a", 0.0), one("qwen2.5:7b", "b", 0.0), one("llama3.1:8b", "c", 0.05)
        )

    done = dict(asyncio.run(go()))
    # both qwen requests share one load (0.1) + ttft (0.15); llama waits, swaps, answers
    assert 0.25 <= done["qwen2.5:7b"] < 0.5
    assert done["llama3.1:8b"] >= 0.5
    stats = sim.stats()
    assert stats["swaps"] == 2 and stats["evictions"] == 1 and stats["in_flight"] == 0


def test_latency_model_and_time_scale(make_sim: MakeSim) -> None:
    latency = ModelLatency(ttft_s=0.1, tokens_per_s=1000.0, jitter=0.0)
    slow = make_sim("default", swap_s=0.0, default_latency=latency)
    start = time.monotonic()
    out = chat(slow, "qwen2.5:7b", "x" * 40)
    elapsed = time.monotonic() - start
    expected = 0.1 + out["eval_count"] / 1000.0
    assert out["prompt_eval_duration"] == 100_000_000
    assert abs(out["eval_duration"] / 1e9 - out["eval_count"] / 1000.0) < 1e-6
    assert expected <= elapsed < expected + 0.3
    fast = make_sim("default", swap_s=0.0, default_latency=latency, time_scale=0.0)
    start = time.monotonic()
    out = chat(fast, "qwen2.5:7b", "x" * 40)
    assert time.monotonic() - start < 0.1 and out["prompt_eval_duration"] == 100_000_000


def test_per_model_latency_and_jitter(make_sim: MakeSim) -> None:
    models = {"qwen2.5:3b": ModelLatency(ttft_s=0.01, tokens_per_s=100.0, jitter=0.5)}
    sim = make_sim(models=models, time_scale=0.0)
    ttfts = {chat(sim, "qwen2.5:3b", f"t{i}")["prompt_eval_duration"] for i in range(8)}
    assert len(ttfts) > 1 and all(5_000_000 <= t <= 15_000_000 for t in ttfts)
    assert chat(sim, "qwen2.5:7b")["prompt_eval_duration"] != 10_000_000  # the default
