"""AnthropicActor through the official anthropic client against a scripted server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from providers.stub import KEY_ENV, Reply, StubServer, echo_auth
from turing.actors.base import Actor, Message, ModelRequest, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicActor, create

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"skills": {"type": "array", "items": {"type": "string"}}},
    "required": ["skills"],
}
ANSWER = {"skills": ["sql", "python"]}


def message(*blocks: dict[str, Any], **usage: int) -> Reply:
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-1",
        "content": list(blocks)
        or [{"type": "tool_use", "id": "toolu_01", "name": "skills", "input": ANSWER}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 200, "output_tokens": 25, **usage},
    }
    return Reply(200, body)


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the client sent it (x-api-key, or a bearer token in newer clients)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or bearer.removeprefix("Bearer ") or None


def actor(url: str, **settings: Any) -> AnthropicActor:
    return create(ActorSettings.parse("anthropic:claude-test-1", base_url=url, **settings))


def ask(a: AnthropicActor, **kw: Any) -> Any:
    kw.setdefault("messages", (Message("user", "find skills"),))
    return asyncio.run(a.complete(ModelRequest(**kw)))


def fail(a: AnthropicActor, **kw: Any) -> ActorError:
    with pytest.raises(ActorError) as info:
        ask(a, **kw)
    return info.value


def test_identity_protocol_and_settings(server: StubServer) -> None:
    a = actor(server.url, price_output=15.0)
    assert isinstance(a, Actor)
    assert a.identity == f"anthropic:claude-test-1@{server.url}"
    assert a.settings.price_output == 15.0


def test_structured_output_through_one_forced_tool(server: StubServer, fake_key: str) -> None:
    server.reply(message())
    response = ask(
        actor(server.url, api_key_env=KEY_ENV),
        schema=SCHEMA,
        schema_name="talent.skills",
        messages=(Message("system", "be precise"), Message("user", "find skills")),
    )
    seen = server.last
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert sent_key(seen.headers) == fake_key
    body = seen.body
    assert body["model"] == "claude-test-1"
    assert body["system"] == "be precise"
    assert body["messages"] == [{"role": "user", "content": "find skills"}]
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    [tool] = body["tools"]
    assert tool["name"] == "talent_skills"
    assert tool["input_schema"] == SCHEMA
    assert tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": "talent_skills"}
    assert json.loads(response.text) == ANSWER
    assert response.usage == Usage(200, 25, 1)
    assert response.model == "claude-test-1"


def test_max_tokens_from_settings_then_request(server: StubServer) -> None:
    server.reply(message(), message())
    ask(actor(server.url, max_tokens=100), schema=SCHEMA, max_tokens=900)
    assert server.last.body["max_tokens"] == 100
    ask(actor(server.url), schema=SCHEMA, max_tokens=900)
    assert server.last.body["max_tokens"] == 900


def test_cached_input_tokens_count_as_input(server: StubServer) -> None:
    server.reply(message(cache_read_input_tokens=1000, cache_creation_input_tokens=50))
    assert ask(actor(server.url), schema=SCHEMA).usage == Usage(1250, 25, 1)


def test_reask_is_plain_assistant_text_and_a_plain_user_message(server: StubServer) -> None:
    server.reply(message())
    previous = json.dumps({"skills": "sql"})
    ask(
        actor(server.url),
        schema=SCHEMA,
        messages=(
            Message("system", "be precise"),
            Message("user", "find skills"),
            Message("assistant", previous),
            Message("user", "Your previous answer did not satisfy the required JSON Schema."),
        ),
    )
    assert server.last.body["messages"] == [
        {"role": "user", "content": "find skills"},
        {"role": "assistant", "content": previous},
        {
            "role": "user",
            "content": "Your previous answer did not satisfy the required JSON Schema.",
        },
    ]
    assert "tool_result" not in json.dumps(server.last.body["messages"])


def test_neighbouring_turns_of_one_role_are_joined(server: StubServer) -> None:
    server.reply(message())
    ask(
        actor(server.url),
        schema=SCHEMA,
        messages=(Message("user", "a"), Message("user", "b"), Message("system", "s")),
    )
    assert server.last.body["messages"] == [{"role": "user", "content": "a\n\nb"}]
    assert server.last.body["system"] == "s"


def test_text_answer_without_tool_use(server: StubServer) -> None:
    server.reply(message({"type": "text", "text": '{"skills": []}'}))
    assert ask(actor(server.url), schema=SCHEMA).text == '{"skills": []}'


def test_non_object_schema_goes_in_the_system_prompt(server: StubServer) -> None:
    server.reply(message({"type": "text", "text": "[1]"}))
    schema = {"type": "array", "items": {"type": "integer"}}
    ask(actor(server.url), schema=schema)
    body = server.last.body
    assert "tools" not in body and "tool_choice" not in body
    assert json.dumps(schema) in body["system"]


def test_without_a_key_a_placeholder_is_sent_never_ambient_credentials(
    server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key-123456789")
    server.reply(message())
    ask(actor(server.url), schema=SCHEMA)
    assert sent_key(server.last.headers) == "not-needed"
    assert actor("https://api.anthropic.com").key_env == "ANTHROPIC_API_KEY"


def test_model_not_found_says_how_to_list_models(server: StubServer) -> None:
    server.reply(
        Reply(404, {"type": "error", "error": {"type": "not_found_error", "message": "model: x"}})
    )
    err = fail(actor(server.url), schema=SCHEMA)
    assert (err.kind, err.transient) == ("not_found", False)
    assert str(err).startswith(
        f"model claude-test-1 not found at {server.url} "
        f"(check the model name; GET {server.url}/v1/models lists them)"
    )


@pytest.mark.parametrize(
    ("reply", "kind", "transient", "retry_after"),
    [
        (Reply(500, {"type": "error", "error": {"message": "x"}}), "server", True, None),
        (
            Reply(529, {"type": "error", "error": {"type": "overloaded_error"}}),
            "server",
            True,
            None,
        ),
        (
            Reply(429, {"type": "error", "error": {"message": "rate"}}, {"retry-after": "20"}),
            "rate_limit",
            True,
            20.0,
        ),
        (Reply(400, {"type": "error", "error": {"message": "bad"}}), "bad_request", False, None),
        (Reply(401, {"type": "error", "error": {"message": "no"}}), "auth", False, None),
        (Reply(200, "this is not json"), "bad_response", False, None),
        (Reply(200, {"type": "message", "content": None}), "bad_response", False, None),
    ],
)
def test_error_classification(
    server: StubServer, reply: Reply, kind: str, transient: bool, retry_after: float | None
) -> None:
    server.reply(reply)
    err = fail(actor(server.url), schema=SCHEMA)
    assert (err.kind, err.transient, err.retry_after) == (kind, transient, retry_after)


def test_auth_names_the_variable(server: StubServer, fake_key: str) -> None:
    server.reply(echo_auth(401))
    err = fail(actor(server.url, api_key_env=KEY_ENV), schema=SCHEMA)
    assert str(err) == f"authentication failed at {server.url}: check the API key in ${KEY_ENV}"


def test_connection_refused(closed_port: int) -> None:
    err = fail(actor(f"http://127.0.0.1:{closed_port}"), schema=SCHEMA)
    assert (err.kind, err.transient) == ("connection", True)


def test_timeout(server: StubServer) -> None:
    server.reply(Reply(200, {}, delay=1.5))
    err = fail(actor(server.url, timeout=0.2), schema=SCHEMA)
    assert (err.kind, err.transient) == ("timeout", True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_key_never_appears_in_errors(server: StubServer, fake_key: str, status: int) -> None:
    server.reply(echo_auth(status))
    a = actor(server.url, api_key_env=KEY_ENV)
    err = fail(a, schema=SCHEMA)
    assert sent_key(server.last.headers) == fake_key  # it was sent
    for text in (str(err), repr(err), repr(a), a.identity):
        assert fake_key not in text
        assert "Zq7fake" not in text
    assert err.__cause__ is None and err.__suppress_context__
