"""An LLM simulator that speaks Ollama's and OpenAI's HTTP protocols.

No model is needed: answers come from a pluggable responder (by default one that makes
schema-valid data), with a latency model per model, a model-swap cost for a limited number
of resident models, and fault injection by kind and rate, deterministic for a seed.

    from turing.sim import SimConfig, Simulator

    with Simulator(SimConfig.profile("chaos", seed=7)) as sim:
        ...  # point ollama.AsyncClient(host=sim.url) or openai (base_url=sim.openai_url)
        print(sim.stats()["faults"])

The HTTP server needs the `turing[sim]` extra (starlette, uvicorn); importing this package
does not.
"""

from turing.sim.config import (
    FAULT_KINDS,
    PROFILES,
    QUALITY_FAULTS,
    SHAPE_FAULTS,
    TRANSPORT_FAULTS,
    ModelLatency,
    SimConfig,
)
from turing.sim.engine import Engine
from turing.sim.responders import Responder, SchemaResponder, load_responder
from turing.sim.runner import Simulator, create_app, serve

__all__ = [
    "FAULT_KINDS",
    "PROFILES",
    "QUALITY_FAULTS",
    "SHAPE_FAULTS",
    "TRANSPORT_FAULTS",
    "Engine",
    "ModelLatency",
    "Responder",
    "SchemaResponder",
    "SimConfig",
    "Simulator",
    "create_app",
    "load_responder",
    "serve",
]
