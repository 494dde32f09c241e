"""OllamaActor through the official ollama client against a scripted server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers.stub import KEY_ENV, Reply, StubServer, echo_auth
from turing.actors.base import Actor, Message, ModelRequest, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers.ollama import OllamaActor, create

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"skills": {"type": "array", "items": {"type": "string"}}},
    "required": ["skills"],
}


def chat_reply(content: str = '{"skills": ["sql"]}', **extra: Any) -> Reply:
    body = {
        "model": "qwen2.5:7b",
        "created_at": "2026-01-05T12:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 42,
        "eval_count": 7,
        **extra,
    }
    return Reply(200, body)


def actor(server_url: str, **settings: Any) -> OllamaActor:
    return create(ActorSettings.parse("ollama:qwen2.5:7b", base_url=server_url, **settings))


def ask(a: OllamaActor, **request: Any) -> Any:
    req = ModelRequest(messages=(Message("user", "find skills"),), **request)
    return asyncio.run(a.complete(req))


def fail(a: OllamaActor, **request: Any) -> ActorError:
    with pytest.raises(ActorError) as info:
        ask(a, **request)
    return info.value


def test_identity_protocol_and_settings(server: StubServer) -> None:
    a = actor(server.url, price_input=0.1)
    assert isinstance(a, Actor)
    assert a.identity == f"ollama:qwen2.5:7b@{server.url}"
    assert a.settings.price_input == 0.1
    assert repr(a) == f"OllamaActor('ollama:qwen2.5:7b@{server.url}')"


def test_request_body_has_schema_format_and_options(server: StubServer) -> None:
    server.reply(chat_reply())
    a = actor(server.url, num_ctx=8192, keep_alive="10m", options={"top_k": 20})
    response = ask(a, schema=SCHEMA, temperature=0.2, seed=7, max_tokens=300)
    seen = server.last
    assert (seen.method, seen.path) == ("POST", "/api/chat")
    assert seen.body["model"] == "qwen2.5:7b"
    assert seen.body["messages"] == [{"role": "user", "content": "find skills"}]
    assert seen.body["format"] == SCHEMA
    assert seen.body["stream"] is False
    assert seen.body["keep_alive"] == "10m"
    assert seen.body["options"] == {
        "top_k": 20,
        "temperature": 0.2,
        "seed": 7,
        "num_ctx": 8192,
        "num_predict": 300,
    }
    assert response.text == '{"skills": ["sql"]}'
    assert response.usage == Usage(42, 7, 1)
    assert response.model == "qwen2.5:7b"


def test_settings_override_request_values(server: StubServer) -> None:
    server.reply(chat_reply())
    a = actor(server.url, temperature=0.0, seed=1, max_tokens=64)
    ask(a, schema=SCHEMA, temperature=0.9, seed=99, max_tokens=1000)
    assert server.last.body["options"] == {"temperature": 0.0, "seed": 1, "num_predict": 64}


def test_without_schema_the_format_is_json(server: StubServer) -> None:
    server.reply(chat_reply())
    ask(actor(server.url))
    assert server.last.body["format"] == "json"
    assert server.last.body["options"] == {"temperature": 0.0}


def test_missing_counts_are_zero(server: StubServer) -> None:
    server.reply(
        Reply(200, {"model": "qwen2.5:7b", "message": {"role": "assistant", "content": ""}})
    )
    response = ask(actor(server.url), schema=SCHEMA)
    assert response.usage == Usage(0, 0, 1)
    assert response.text == ""


def test_reask_is_plain_messages(server: StubServer) -> None:
    server.reply(chat_reply())
    messages = (
        Message("system", "be precise"),
        Message("user", "find skills"),
        Message("assistant", '{"skill": "sql"}'),
        Message("user", "Your previous answer did not satisfy ..."),
    )
    asyncio.run(actor(server.url).complete(ModelRequest(messages=messages, schema=SCHEMA)))
    assert server.last.body["messages"] == [m.as_dict() for m in messages]
    assert not server.last.body.get("tools")


def test_one_actor_serves_several_event_loops(server: StubServer) -> None:
    server.reply(chat_reply(), chat_reply())
    a = actor(server.url)
    assert ask(a).usage.calls == 1
    assert ask(a).usage.calls == 1  # a new loop gets a new client


def test_key_is_sent_as_bearer_when_configured(server: StubServer, fake_key: str) -> None:
    server.reply(chat_reply())
    ask(actor(server.url, api_key_env=KEY_ENV))
    assert server.last.headers["authorization"] == f"Bearer {fake_key}"


def test_model_not_found_says_to_pull(server: StubServer) -> None:
    server.reply(Reply(404, {"error": 'model "qwen2.5:7b" not found, try pulling it first'}))
    err = fail(actor(server.url))
    assert (err.kind, err.transient) == ("not_found", False)
    assert str(err).startswith(
        f"model qwen2.5:7b not found on {server.url}: run `ollama pull qwen2.5:7b`"
    )


@pytest.mark.parametrize(
    ("reply", "kind", "transient", "retry_after"),
    [
        (Reply(500, {"error": "llama runner crashed"}), "server", True, None),
        (Reply(503, "busy"), "server", True, None),
        (Reply(429, {"error": "slow down"}, {"Retry-After": "7"}), "rate_limit", True, 7.0),
        (
            Reply(429, {"error": "slow down"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            "rate_limit",
            True,
            0.0,
        ),
        (Reply(400, {"error": "invalid format: bad schema"}), "bad_request", False, None),
        (Reply(401, {"error": "unauthorized"}), "auth", False, None),
        (Reply(200, "this is not json"), "bad_response", False, None),
    ],
)
def test_error_classification(
    server: StubServer, reply: Reply, kind: str, transient: bool, retry_after: float | None
) -> None:
    server.reply(reply)
    err = fail(actor(server.url))
    assert (err.kind, err.transient, err.retry_after) == (kind, transient, retry_after)


def test_bad_request_carries_the_server_message(server: StubServer) -> None:
    server.reply(Reply(400, {"error": "invalid format: bad schema"}))
    assert "invalid format: bad schema" in str(fail(actor(server.url)))


def test_connection_refused(closed_port: int) -> None:
    err = fail(actor(f"http://127.0.0.1:{closed_port}"))
    assert (err.kind, err.transient) == ("connection", True)
    assert "ollama serve" in str(err)


def test_timeout(server: StubServer) -> None:
    server.reply(Reply(200, {}, delay=1.5))
    err = fail(actor(server.url, timeout=0.2))
    assert (err.kind, err.transient) == ("timeout", True)
    assert "0.2s" in str(err)


def test_request_timeout_applies_without_a_setting(server: StubServer) -> None:
    server.reply(Reply(200, {}, delay=1.5))
    assert fail(actor(server.url), timeout=0.2).kind == "timeout"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_key_never_appears_in_errors(server: StubServer, fake_key: str, status: int) -> None:
    server.reply(echo_auth(status))
    a = actor(server.url, api_key_env=KEY_ENV)
    err = fail(a)
    assert server.last.headers["authorization"] == f"Bearer {fake_key}"  # it was sent
    for text in (str(err), repr(err), repr(a), a.identity, str(err.__cause__)):
        assert fake_key not in text
        assert "Zq7fake" not in text
    assert err.__cause__ is None and err.__suppress_context__
