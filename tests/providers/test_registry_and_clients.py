"""The registry builds each provider's actor; clients live and die with their event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from turing.actors.base import Actor, Message, ModelRequest
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.providers._common import CallParams, PerLoop


@pytest.mark.parametrize(
    ("spec", "cls", "identity"),
    [
        ("ollama:qwen2.5:7b", "OllamaActor", "ollama:qwen2.5:7b@http://127.0.0.1:11434"),
        ("openai:gpt-4o-mini", "OpenAIActor", "openai:gpt-4o-mini@https://api.openai.com/v1"),
        (
            "anthropic:claude-test-1",
            "AnthropicActor",
            "anthropic:claude-test-1@https://api.anthropic.com",
        ),
    ],
)
def test_registry_creates_each_provider(spec: str, cls: str, identity: str) -> None:
    actor = create(ActorSettings.parse(spec, api_key_env="NOT_SET_ANYWHERE"))
    assert isinstance(actor, Actor)
    assert type(actor).__name__ == cls
    assert actor.identity == identity
    assert getattr(actor, "settings").model == spec.partition(":")[2]  # noqa: B009


def test_call_params_prefer_settings() -> None:
    request = ModelRequest(
        (Message("user", "x"),), temperature=0.7, timeout=5, max_tokens=9, seed=2
    )
    plain = CallParams.of(ActorSettings.parse("ollama:m"), request)
    assert plain == CallParams(temperature=0.7, seed=2, timeout=5, max_tokens=9)
    forced = ActorSettings.parse("ollama:m", temperature=0.0, seed=1, timeout=30.0, max_tokens=10)
    assert CallParams.of(forced, request) == CallParams(0.0, 1, 30.0, 10)


class FakeClient:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False


async def close(client: FakeClient) -> None:
    assert asyncio.get_running_loop() is client.loop  # closed in its own loop
    client.closed = True


def test_one_client_per_loop_closed_when_the_loop_ends() -> None:
    clients = PerLoop(FakeClient, close)

    async def use() -> FakeClient:
        first = await clients.get()
        assert await clients.get() is first
        return first

    a = asyncio.run(use())
    assert a.closed
    b = asyncio.run(use())
    assert b is not a and b.closed


def test_aclose_closes_now_and_a_later_get_makes_a_new_client() -> None:
    clients = PerLoop(FakeClient, close)

    async def use() -> None:
        first = await clients.get()
        await clients.aclose()
        assert first.closed
        second = await clients.get()
        assert second is not first and not second.closed

    asyncio.run(use())


def test_loops_in_threads_get_their_own_clients() -> None:
    clients = PerLoop(FakeClient, close)
    seen: list[FakeClient] = []
    barrier = threading.Barrier(2)

    async def use() -> None:
        client = await clients.get()
        await asyncio.to_thread(barrier.wait)  # both loops alive at once
        assert await clients.get() is client
        seen.append(client)

    threads = [threading.Thread(target=asyncio.run, args=(use(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert all(c.closed for c in seen)
