"""The Ollama and OpenAI actors against the LLM simulator (`turing.sim`), which speaks both
protocols; skipped where the simulator (or its `turing[sim]` extra) is not available."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from turing.actors.base import Actor, Message, ModelRequest
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers import create

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401

    from turing.sim import SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "posting_id": {"type": "integer"},
        "skills": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "level": {"type": "string", "enum": ["low", "high"]},
                    "years": {"type": "integer"},
                },
                "required": ["name", "level"],
                "additionalProperties": False,
            },
        },
        "summary": {"type": ["string", "null"]},
    },
    "required": ["posting_id", "skills"],
    "additionalProperties": False,
}

SPECS = {"ollama": "ollama:qwen2.5:7b", "openai": "openai:gpt-4o-mini"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimConfig.profile("fast")) as running:
        yield running


def base_url(sim: Simulator, provider: str) -> str:
    return sim.url if provider == "ollama" else sim.openai_url


def make(sim: Simulator, provider: str, model: str | None = None, **settings: Any) -> Actor:
    spec = SPECS[provider] if model is None else f"{provider}:{model}"
    return create(ActorSettings.parse(spec, base_url=base_url(sim, provider), **settings))


def ask(actor: Actor, timeout: float = 10.0) -> Any:
    request = ModelRequest(
        (Message("system", "Extract skills."), Message("user", "Posting 7: SQL and Go.")),
        schema=SCHEMA,
        schema_name="skills",
        timeout=timeout,
    )
    return asyncio.run(actor.complete(request))


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_schema_valid_answer_and_usage(sim: Simulator, provider: str) -> None:
    response = ask(make(sim, provider))
    jsonschema.validate(json.loads(response.text), SCHEMA)
    assert response.usage.calls == 1
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_unknown_model_is_not_found_with_what_to_do(sim: Simulator, provider: str) -> None:
    with pytest.raises(ActorError) as info:
        ask(make(sim, provider, model="no-such-model:1b"))
    err = info.value
    assert (err.kind, err.transient) == ("not_found", False)
    hint = "ollama pull no-such-model:1b" if provider == "ollama" else "/models lists them"
    assert hint in str(err)


@pytest.mark.parametrize(
    ("faults", "kind", "retry_after"),
    [
        ({"http_500": 1.0}, "server", None),
        ({"http_429": 1.0}, "rate_limit", 2.0),
    ],
)
@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_transport_faults_are_transient(
    provider: str, faults: dict[str, float], kind: str, retry_after: float | None
) -> None:
    config = SimConfig.profile("fast", faults=faults, retry_after_s=2.0)
    with Simulator(config) as faulty, pytest.raises(ActorError) as info:
        ask(make(faulty, provider))
    err = info.value
    assert (err.kind, err.transient) == (kind, True)
    if retry_after is not None:
        assert err.retry_after == retry_after


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_hang_is_a_timeout(provider: str) -> None:
    config = SimConfig.profile("fast", faults={"hang": 1.0}, hang_s=2.0)
    with Simulator(config) as hanging, pytest.raises(ActorError) as info:
        ask(make(hanging, provider), timeout=0.3)
    assert (info.value.kind, info.value.transient) == ("timeout", True)


def test_wrong_key_is_auth_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURING_SIM_TEST_KEY", "sk-wrong-Zq7fake0123456789")
    config = SimConfig.profile("fast", api_key="sk-right-key-abcdef")
    with Simulator(config) as locked, pytest.raises(ActorError) as info:
        ask(make(locked, "openai", api_key_env="TURING_SIM_TEST_KEY"))
    err = info.value
    assert err.kind == "auth"
    assert "$TURING_SIM_TEST_KEY" in str(err)
    assert "Zq7fake" not in str(err) and "sk-right" not in str(err)
