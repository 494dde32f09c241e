"""Same seed + same requests => same answers, faults and stats, whatever the concurrency."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from sim.conftest import SKILLS_SCHEMA, MakeSim
from turing.sim import Simulator


def requests(n: int) -> list[dict[str, Any]]:
    """A fixed sequence, with repeats (a retried identical request)."""
    out = []
    for i in range(n):
        body = {
            "model": "qwen2.5:7b",
            "messages": [{"role": "user", "content": f"posting_id: {i % (n // 2)}\nskills"}],
            "format": SKILLS_SCHEMA,
            "stream": False,
        }
        out.append(body)
    return out


def replay(sim: Simulator, bodies: list[dict[str, Any]]) -> list[tuple[int, str]]:
    out = []
    with httpx.Client(timeout=10) as client:
        for body in bodies:
            r = client.post(sim.url + "/api/chat", json=body)
            out.append(
                (r.status_code, r.text if r.status_code != 200 else r.json()["message"]["content"])
            )
    return out


def replay_concurrently(sim: Simulator, bodies: list[dict[str, Any]]) -> dict[int, tuple[int, str]]:
    """Distinct requests fired all at once, in a shuffled order."""

    async def go() -> dict[int, tuple[int, str]]:
        async with httpx.AsyncClient(timeout=10) as client:

            async def one(i: int) -> tuple[int, tuple[int, str]]:
                r = await client.post(sim.url + "/api/chat", json=bodies[i])
                text = r.json()["message"]["content"] if r.status_code == 200 else r.text
                return i, (r.status_code, text)

            order = list(range(len(bodies)))
            random.shuffle(order)
            return dict(await asyncio.gather(*(one(i) for i in order)))

    return asyncio.run(go())


def test_same_seed_same_answers_and_stats(make_sim: MakeSim) -> None:
    bodies = requests(60)
    first = make_sim("chaos", seed=11, hang_s=0.0, time_scale=0.0)
    second = make_sim("chaos", seed=11, hang_s=0.0, time_scale=0.0)
    a, b = replay(first, bodies), replay(second, bodies)
    assert a == b
    assert first.stats() == second.stats()
    assert first.stats()["faulty"] > 0
    other = make_sim("chaos", seed=12, hang_s=0.0, time_scale=0.0)
    assert replay(other, bodies) != a


def test_retried_request_gets_a_fresh_fault_decision(make_sim: MakeSim) -> None:
    sim = make_sim(seed=3, faults={"http_500": 0.5})
    body = requests(2)[0]
    codes = [code for code, _ in replay(sim, [body] * 20)]
    assert 500 in codes and 200 in codes  # not the same decision forever
    answers = {text for code, text in replay(sim, [body] * 6) if code == 200}
    assert len(answers) == 1  # the correct answer itself does not change
    sim.reset()
    again = [code for code, _ in replay(sim, [body] * 20)]
    assert again == codes  # the sequence is reproducible


def test_same_answers_under_concurrency(make_sim: MakeSim) -> None:
    bodies = [
        {**b, "messages": [{"role": "user", "content": f"posting_id: {i}"}]}
        for i, b in enumerate(requests(40))
    ]
    first = make_sim("chaos", seed=4, hang_s=0.0, time_scale=0.0, models_resident=0)
    second = make_sim("chaos", seed=4, hang_s=0.0, time_scale=0.0, models_resident=0)
    sequential = dict(enumerate(replay(first, bodies)))
    concurrent = replay_concurrently(second, bodies)
    assert concurrent == sequential
    assert first.stats() == second.stats()
