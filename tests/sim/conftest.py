"""Simulator fixtures: a fresh in-process simulator per test (port 0, no sleeping)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from turing.sim import SimConfig, Simulator
from turing.sim.responders import Responder

SKILLS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "posting_id": {"type": "integer"},
        "skills": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "importance": {"enum": ["required", "preferred", "nice_to_have"]},
                    "weight": {"type": "integer", "minimum": 10, "maximum": 100},
                },
                "required": ["name", "importance", "weight"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["posting_id", "skills"],
    "additionalProperties": False,
}

MakeSim = Callable[..., Simulator]


class FakeTime:
    """Time that passes only when the simulator sleeps: each sleep moves `now` and adds to
    `slept` at once. With `gated`, sleeps first wait until `gate` is set (from any thread)."""

    def __init__(self, gated: bool = False) -> None:
        self.now = 0.0
        self.slept = 0.0
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        while not self.gate.is_set():
            await asyncio.sleep(0.005)
        self.now += seconds
        self.slept += seconds
        await asyncio.sleep(0)


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    """`make_sim(profile="fast", responder=None, time=None, **overrides)` -> a running
    Simulator; with `time` (a FakeTime) its modelled latencies pass on that."""
    started: list[Simulator] = []

    def make(
        profile: str = "fast",
        responder: Responder | None = None,
        time: FakeTime | None = None,
        **overrides: Any,
    ) -> Simulator:
        timing: dict[str, Any] = {} if time is None else {"clock": time.clock, "sleep": time.sleep}
        config = SimConfig.profile(profile, **overrides)
        sim = Simulator(config, responder=responder, **timing).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: MakeSim) -> Simulator:
    return make_sim()
