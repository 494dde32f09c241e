"""One simulated GPU holding one model (swaps cost), shared by the batching tests: two models,
an item contract, the simulator and the actors for models A and B on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from turing.actors.affinity import AffinityActor, HostScheduler
from turing.actors.base import Actor
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401

    from turing.sim import ModelLatency, SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)

A = "qwen2.5:7b"
B = "llama3.1:8b"
N = 12


def one_gpu() -> Iterator[Simulator]:
    """The running simulator (for a module fixture: `yield from one_gpu()`)."""
    fixed = ModelLatency(ttft_s=0.2, tokens_per_s=0.0, jitter=0.0)
    config = SimConfig(
        name="one-gpu",
        models={A: fixed, B: fixed},
        swap_s=2.0,
        models_resident=1,
        time_scale=0.01,
    )
    with Simulator(config) as running:
        yield running


class ItemIn(BaseModel):
    item_id: int
    text: str


def actors(sim: Simulator, host: HostScheduler | None) -> dict[str, Actor]:
    """Actors "a" (model A) and "b" (model B), behind `host`'s scheduler when given."""
    out: dict[str, Actor] = {}
    for name, model in (("a", A), ("b", B)):
        settings = ActorSettings.parse(f"ollama:{model}", base_url=sim.url, max_retries=0)
        actor: Actor = ManagedActor(create(settings), settings)
        out[name] = actor if host is None else AffinityActor(actor, host)
    return out
