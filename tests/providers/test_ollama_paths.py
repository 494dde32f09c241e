"""The Ollama provider's two paths agree: on plain HTTP it posts `/api/chat` itself over the
keep-alive transport; otherwise (https, a proxy in the environment) it goes through the
official client. Same request body and headers, same answers, same errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers.stub import KEY_ENV, Reply, StubServer
from providers.test_ollama import SCHEMA, chat_reply
from turing.actors.base import Message, ModelRequest, ModelResponse
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers.ollama import OllamaActor, create

IGNORED_HEADERS = {"accept-encoding", "connection"}  # httpx's own additions


def call(a: OllamaActor, direct: bool) -> tuple[ModelResponse | None, tuple[Any, ...] | None]:
    if not direct:
        a._direct = None
    request = ModelRequest(
        messages=(Message("system", "be brief"), Message("user", "find skills ünïcode")),
        schema=SCHEMA,
        temperature=0.3,
        seed=11,
        max_tokens=64,
    )
    try:
        return asyncio.run(a.complete(request)), None
    except ActorError as exc:
        return None, (exc.kind, exc.transient, exc.retry_after, str(exc))


def both(server: StubServer, reply: Reply, **settings: Any) -> list[Any]:
    seen = []
    outcomes = []
    for direct in (True, False):
        server.reply(reply)
        a = create(ActorSettings.parse("ollama:qwen2.5:7b", base_url=server.url, **settings))
        assert (a._direct is not None) is True
        outcomes.append(call(a, direct))
        last = server.last
        headers = {k: v for k, v in last.headers.items() if k not in IGNORED_HEADERS}
        seen.append((last.method, last.path, headers, last.body))
    assert seen[0] == seen[1]
    assert outcomes[0] == outcomes[1]
    return outcomes[0]  # type: ignore[no-any-return]


def test_the_same_request_and_answer(server: StubServer) -> None:
    response, error = both(server, chat_reply(), keep_alive="5m", options={"top_k": 3})
    assert error is None and response.text == '{"skills": ["sql"]}'


def test_the_same_key_header(
    server: StubServer, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    both(server, chat_reply(), api_key_env=KEY_ENV)
    monkeypatch.setenv("OLLAMA_API_KEY", "from-the-environment")
    both(server, chat_reply())


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, {"error": 'model "qwen2.5:7b" not found, try pulling it first'}),
        Reply(429, {"error": "slow down"}, {"Retry-After": "7"}),
        Reply(500, {"error": "llama runner crashed"}),
        Reply(503, "busy"),
        Reply(200, "this is not json"),
        Reply(200, {"model": "qwen2.5:7b", "done": True}),  # no message
        Reply(200, {"model": "m", "message": {"role": "assistant"}}),  # no content: ""
    ],
    ids=["not-found", "rate-limit", "server", "busy", "not-json", "no-message", "no-content"],
)
def test_the_same_outcome(server: StubServer, reply: Reply) -> None:
    _, error = both(server, reply)
    if reply.status >= 400 or isinstance(reply.body, str):
        assert error is not None
    if reply.status == 200 and isinstance(reply.body, dict) and "message" not in reply.body:
        assert error is not None and error[0] == "bad_response"


def test_https_and_proxies_take_the_clients_path(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ActorSettings.parse("ollama:m", base_url="https://ollama.example.com")
    assert create(settings)._direct is None
    from turing.providers.ollama import _proxied

    assert not _proxied()
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _proxied()


def test_turing_ollama_client_sends_every_call_through_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TURING_OLLAMA_CLIENT", "1")
    settings = ActorSettings("ollama", "qwen2.5:7b", base_url="http://127.0.0.1:9")
    assert create(settings)._direct is None
    monkeypatch.setenv("TURING_OLLAMA_CLIENT", "0")
    assert create(settings)._direct is not None
