"""Structured-output negotiation (`structured = "auto"`) against the simulator configured to
refuse response formats the way real servers do: llama-cpp-python's HTTP 500 with a pydantic
validation body for json_schema, a 400 for json_schema, a 422 for a `schema` in JSON mode, a
server that takes no response_format at all."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from turing.actors.base import Message, ModelRequest, ModelResponse
from turing.actors.managed import ManagedActor, RetriedResponse
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers.openai import OpenAIActor, create, negotiated_mode

try:
    from turing.sim import SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)

MODEL = "gpt-4o-mini"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "posting_id": {"type": "integer"},
        "skills": {"type": "array", "items": {"type": "string"}},
        "note": {"type": "string"},
    },
    "required": ["posting_id", "skills"],
    "additionalProperties": False,
}

# server type (turing.sim.config.SERVER_TYPES) -> the mode "auto" settles on
EXPECTED = {
    "openai": "json_schema",  # also vLLM, LM Studio, llama.cpp's llama-server
    "llama-cpp-python": "json_object_schema",  # json_schema: HTTP 500 "Input should be ..."
    "no-json-schema": "json_object_schema",  # json_schema: HTTP 400
    "json-mode-only": "json_object",  # json_schema and a schema in json_object: HTTP 422
    "no-format": "prompt",  # every response_format: HTTP 400
}


def simulator(server_type: str, **overrides: Any) -> Simulator:
    return Simulator(SimConfig.profile("fast", **overrides).server_type(server_type))


@pytest.fixture
def sims() -> Iterator[dict[str, Simulator]]:
    running = {name: simulator(name).start() for name in EXPECTED}
    try:
        yield running
    finally:
        for sim in running.values():
            sim.stop()


def settings(sim: Simulator, **extra: Any) -> ActorSettings:
    return ActorSettings.parse(f"openai:{MODEL}", base_url=sim.openai_url, **extra)


def request() -> ModelRequest:
    return ModelRequest(
        (Message("system", "Extract skills."), Message("user", "Posting 7: SQL and Go.")),
        schema=SCHEMA,
        schema_name="skills",
        timeout=10.0,
    )


def ask(actor: Any) -> ModelResponse:
    response: ModelResponse = asyncio.run(actor.complete(request()))
    return response


def refusals(sim: Simulator) -> int:
    return int(sim.stats()["errors"].get("structured_refused", 0))


def answer_value(text: str) -> Any:
    """The JSON in an answer (a model without a response_format answers in a fence)."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    return json.loads(fenced.group(1) if fenced else text)


@pytest.mark.parametrize("server_type", list(EXPECTED))
def test_each_server_type_negotiates_its_mode(sims: dict[str, Simulator], server_type: str) -> None:
    sim = sims[server_type]
    response = ask(create(settings(sim)))
    mode = EXPECTED[server_type]
    assert negotiated_mode(sim.openai_url, MODEL) == mode
    jsonschema.validate(answer_value(response.text), SCHEMA)
    # the call that found the mode says so (the executor records it on the call's row)
    assert isinstance(response, RetriedResponse)
    assert response.retried.startswith(f"structured output negotiated: {mode}")
    steps = list(EXPECTED.values()).index(mode) if server_type != "openai" else 0
    assert (
        refusals(sim)
        == ({"json_schema": 0, "json_object_schema": 1, "json_object": 2, "prompt": 3}[mode])
    )
    assert steps >= 0


def test_the_refusal_is_named_in_the_note(sims: dict[str, Simulator]) -> None:
    response = ask(create(settings(sims["llama-cpp-python"])))
    assert isinstance(response, RetriedResponse)
    assert "json_schema refused" in response.retried
    assert "HTTP 500" in response.retried and "Input should be" in response.retried


@pytest.mark.parametrize("server_type", ["llama-cpp-python", "no-format"])
def test_the_mode_is_remembered(sims: dict[str, Simulator], server_type: str) -> None:
    sim = sims[server_type]
    ask(create(settings(sim)))
    first = refusals(sim)
    calls = sim.stats()["calls"]
    # a new actor, a new event loop: the process remembers the mode for (base URL, model)
    again = ask(create(settings(sim)))
    assert refusals(sim) == first  # no refused request the second time
    assert sim.stats()["calls"] == calls + 1
    assert not isinstance(again, RetriedResponse)  # noted once, where it was found


def test_the_mode_is_per_base_url_and_model(sims: dict[str, Simulator]) -> None:
    ask(create(settings(sims["llama-cpp-python"])))
    assert negotiated_mode(sims["openai"].openai_url, MODEL) is None
    assert negotiated_mode(sims["llama-cpp-python"].openai_url, "gpt-4o") is None
    ask(create(settings(sims["openai"])))
    assert negotiated_mode(sims["openai"].openai_url, MODEL) == "json_schema"
    assert negotiated_mode(sims["llama-cpp-python"].openai_url, MODEL) == "json_object_schema"


def test_concurrent_first_calls_negotiate_once(sims: dict[str, Simulator]) -> None:
    sim = sims["llama-cpp-python"]
    actor = create(settings(sim))

    async def many() -> list[ModelResponse]:
        return await asyncio.gather(*(actor.complete(request()) for _ in range(8)))

    answers = asyncio.run(many())
    assert refusals(sim) == 1  # one call negotiated, the others waited for its outcome
    assert sum(isinstance(a, RetriedResponse) for a in answers) == 1


@pytest.mark.parametrize(
    ("server_type", "mode"),
    [("openai", "json_object"), ("openai", "prompt"), ("llama-cpp-python", "json_object_schema")],
)
def test_an_explicit_mode_is_sent_as_it_is(
    sims: dict[str, Simulator], server_type: str, mode: str
) -> None:
    sim = sims[server_type]
    response = ask(create(settings(sim, structured=mode)))
    jsonschema.validate(answer_value(response.text), SCHEMA)
    assert refusals(sim) == 0
    assert negotiated_mode(sim.openai_url, MODEL) is None  # nothing negotiated
    assert not isinstance(response, RetriedResponse)


def test_an_explicit_mode_that_is_refused_fails_and_is_not_changed(
    sims: dict[str, Simulator],
) -> None:
    sim = sims["llama-cpp-python"]
    actor = create(settings(sim, structured="json_schema"))
    for _ in range(2):
        with pytest.raises(ActorError) as caught:
            ask(actor)
        assert (caught.value.kind, caught.value.transient) == ("bad_request", False)
    assert 'structured = "auto" negotiates' in str(caught.value)
    assert refusals(sim) == 2  # json_schema both times, never anything else
    assert sim.stats()["calls"] == 0  # no answer was generated
    assert negotiated_mode(sim.openai_url, MODEL) is None


def test_a_500_that_is_a_validation_error_is_not_retried(sims: dict[str, Simulator]) -> None:
    sim = sims["llama-cpp-python"]
    s = settings(sim, structured="json_schema", max_retries=3)
    managed = ManagedActor(create(s), s)
    with pytest.raises(ActorError) as caught:
        ask(managed)
    assert (caught.value.kind, caught.value.transient, caught.value.retries) == (
        "bad_request",
        False,
        0,
    )
    assert "HTTP 500" in str(caught.value) and "Input should be" in str(caught.value)
    assert refusals(sim) == 1  # one request: not retried


def test_the_note_survives_the_managed_actor(sims: dict[str, Simulator]) -> None:
    s = settings(sims["json-mode-only"])
    response = ask(ManagedActor(create(s), s))
    assert isinstance(response, RetriedResponse)
    assert response.retried.startswith("structured output negotiated: json_object after ")


def test_a_real_server_error_is_no_refusal() -> None:
    """A 500 without a validation body is transient: no fallback, nothing remembered."""
    with simulator("openai", faults={"http_500": 1.0}) as sim:
        actor: OpenAIActor = create(settings(sim))
        with pytest.raises(ActorError) as caught:
            ask(actor)
        assert (caught.value.kind, caught.value.transient) == ("server", True)
        assert negotiated_mode(sim.openai_url, MODEL) is None
        assert sim.stats()["calls"] == 1  # json_schema only; no weaker mode tried
