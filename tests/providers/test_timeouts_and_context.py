"""Issue 11, items 8 and 11, on the real Ollama provider.

Item 8: one effective timeout per call: the actor's `timeout` when set, else the step's own
`timeout=`, else the default (60 s, was 120 s). A call that hangs (the simulator's `hang`
fault) ends at that timeout with a `timeout` failure, whichever layer enforces it (the
managed actor, the provider, or the executor for an actor that does not manage timeouts);
outcome kinds are asserted, never durations.

Item 11: a prompt beyond the actor's context window fails before the call, naming the
estimate and the limit; `context_tokens` (or `num_ctx`) reaches Ollama as `options.num_ctx`
(the simulator does not keep request bodies: the scripted stub server does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from providers.stub import Reply, StubServer
from turing import Executor, LLMStep, Workflow
from turing.actors.base import Actor, Message, ModelRequest
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.steps import DEFAULT_LLM_TIMEOUT_S, effective_timeout

try:
    from turing.sim import SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)


class In(BaseModel):
    item_id: int
    text: str


class Out(BaseModel):
    item_id: int
    tags: list[str]


@pytest.fixture(scope="module")
def hanging() -> Iterator[Simulator]:
    """Every call hangs for 5 s (real time): longer than any timeout below."""
    with Simulator(SimConfig.profile("fast", faults={"hang": 1.0}, hang_s=5.0)) as sim:
        yield sim


async def no_sleep(_: float) -> None:
    return None


def workflow(**step: Any) -> Workflow:
    return Workflow(
        "tag",
        input=In,
        output=Out,
        subject_key="item_id",
        steps=[LLMStep("tag", prompt="Tag item {{ item_id }}: {{ text }}", actor="m", **step)],
    )


def managed(url: str, **settings: Any) -> ManagedActor:
    s = ActorSettings.parse("ollama:qwen2.5:7b", base_url=url, max_retries=0, **settings)
    return ManagedActor(create(s), s, sleep=no_sleep)


def run(wf: Workflow, actor: Actor) -> Any:
    return asyncio.run(Executor({"m": actor}).run(wf, {"item_id": 1, "text": "a b"}))


def test_the_rule_actor_then_step_then_default() -> None:
    plain, explicit = LLMStep("s", prompt="p"), LLMStep("s", prompt="p", timeout=30)
    assert DEFAULT_LLM_TIMEOUT_S == 60.0
    assert effective_timeout(plain, None) == (60.0, "default")
    assert effective_timeout(explicit, None) == (30.0, "step")
    assert effective_timeout(explicit, 5, "gpt") == (5.0, "actor gpt")
    assert effective_timeout(LLMStep("s", prompt="p", timeout=60), None) == (60.0, "step")


def test_a_hung_call_ends_at_the_actors_timeout_even_with_a_longer_step_timeout(
    hanging: Simulator,
) -> None:
    result = run(workflow(timeout=30), managed(hanging.url, timeout=0.3))
    assert not result.ok
    [error] = result.errors
    assert error.kind == "actor" and error.transient
    assert "timeout 0.3s" in error.message or "after 0.3s" in error.message
    assert result.attempts[0].error is not None


def test_a_hung_call_ends_at_the_steps_timeout_without_an_actor_setting(
    hanging: Simulator,
) -> None:
    result = run(workflow(timeout=0.3), managed(hanging.url))
    [error] = result.errors
    assert error.kind == "actor" and "0.3s" in error.message


def test_an_actor_that_does_not_manage_timeouts_gets_the_same_one(hanging: Simulator) -> None:
    """The bare provider (no managed actor): the executor applies the step's timeout."""
    bare = create(ActorSettings.parse("ollama:qwen2.5:7b", base_url=hanging.url))
    result = run(workflow(timeout=0.3), bare)
    [error] = result.errors
    assert error.kind == "actor" and "0.3s" in error.message


def chat_reply() -> Reply:
    return Reply(
        200,
        {
            "model": "qwen2.5:7b",
            "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": '{"item_id": 1, "tags": []}'},
            "done": True,
            "prompt_eval_count": 5,
            "eval_count": 3,
        },
    )


def test_context_tokens_reach_ollama_as_num_ctx(server: StubServer) -> None:
    server.reply(chat_reply())
    actor = managed(server.url, context_tokens=16384)
    assert run(workflow(), actor).ok
    assert server.last.body["options"]["num_ctx"] == 16384


def test_num_ctx_wins_for_what_ollama_is_sent(server: StubServer) -> None:
    server.reply(chat_reply())
    actor = managed(server.url, num_ctx=8192, context_tokens=16384)
    asyncio.run(actor.complete(ModelRequest((Message("user", "hi"),))))
    assert server.last.body["options"]["num_ctx"] == 8192


def test_a_prompt_beyond_the_window_fails_before_reaching_ollama(server: StubServer) -> None:
    server.reply(chat_reply())
    actor = managed(server.url, context_tokens=4096, max_tokens=256)
    result = asyncio.run(
        Executor({"m": actor}).run(workflow(), {"item_id": 1, "text": "ticket " * 20_000})
    )
    [error] = result.errors
    assert error.kind == "actor" and not error.transient
    assert "prompt too long: about 35003 tokens" in error.message
    assert "4096 tokens" in error.message and "256 for the answer" in error.message
    assert server.requests == []  # nothing went out
