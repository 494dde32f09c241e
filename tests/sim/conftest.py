"""Simulator fixtures: a fresh in-process simulator per test (port 0, no sleeping)."""

from __future__ import annotations

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


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    """`make_sim(profile="fast", responder=None, **overrides)` -> a running Simulator."""
    started: list[Simulator] = []

    def make(
        profile: str = "fast", responder: Responder | None = None, **overrides: Any
    ) -> Simulator:
        sim = Simulator(SimConfig.profile(profile, **overrides), responder=responder).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: MakeSim) -> Simulator:
    return make_sim()
