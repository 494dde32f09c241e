"""OpenAIActor through the official openai client against a scripted server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from providers.stub import KEY_ENV, Reply, StubServer, echo_auth
from turing.actors.base import Actor, Message, ModelRequest, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError, ConfigError
from turing.providers.openai import OpenAIActor, create, plan

SCHEMA: dict[str, Any] = {
    "title": "Skills",
    "type": "object",
    "properties": {
        "subject_id": {"type": "integer"},
        "skills": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "years": {"type": "integer"},
                },
                "required": ["name"],
            },
        },
        "note": {"type": ["string", "null"]},
    },
    "required": ["subject_id", "skills"],
}


def completion(content: str | None = '{"subject_id": 1, "skills": []}', **extra: Any) -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767614400,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        **extra,
    }
    return Reply(200, body)


def actor(url: str, **settings: Any) -> OpenAIActor:
    return create(ActorSettings.parse("openai:gpt-4o-mini", base_url=url, **settings))


def v1(server: StubServer) -> str:
    return f"{server.url}/v1"


def request(**kw: Any) -> ModelRequest:
    kw.setdefault("messages", (Message("user", "find skills"),))
    return ModelRequest(**kw)


def ask(a: OpenAIActor, **kw: Any) -> Any:
    return asyncio.run(a.complete(request(**kw)))


def fail(a: OpenAIActor, **kw: Any) -> ActorError:
    with pytest.raises(ActorError) as info:
        ask(a, **kw)
    return info.value


def test_identity_protocol_and_settings(server: StubServer) -> None:
    a = actor(v1(server), max_concurrency=4)
    assert isinstance(a, Actor)
    assert a.identity == f"openai:gpt-4o-mini@{server.url}/v1"
    assert a.settings.max_concurrency == 4


def test_strict_json_schema_for_a_local_server(server: StubServer) -> None:
    server.reply(completion())
    response = ask(
        actor(v1(server)), schema=SCHEMA, schema_name="talent.skills v2", temperature=0.3, seed=5
    )
    seen = server.last
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    body = seen.body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "find skills"}]
    assert body["temperature"] == 0.3
    assert body["seed"] == 5
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "talent_skills_v2"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["subject_id", "skills", "note"]
    assert schema["additionalProperties"] is False
    item = schema["properties"]["skills"]["items"]
    assert item == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "years": {"type": ["integer", "null"]}},
        "required": ["name", "years"],
        "additionalProperties": False,
    }
    assert "title" not in schema
    assert response.text == '{"subject_id": 1, "skills": []}'
    assert response.usage == Usage(120, 30, 1)
    assert response.model == "gpt-4o-mini"


def test_no_seed_no_limit_means_the_fields_are_left_out(server: StubServer) -> None:
    server.reply(completion())
    ask(actor(v1(server)), schema=SCHEMA)
    assert "seed" not in server.last.body
    assert "max_tokens" not in server.last.body
    assert "max_completion_tokens" not in server.last.body


def test_settings_override_and_max_tokens(server: StubServer) -> None:
    server.reply(completion())
    a = actor(v1(server), temperature=0.0, seed=3, max_tokens=64, options={"top_p": 0.9})
    ask(a, schema=SCHEMA, temperature=0.8, seed=9, max_tokens=999)
    body = server.last.body
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.0, 3, 64)
    assert body["top_p"] == 0.9


def test_json_object_mode_puts_the_schema_in_the_system_message(server: StubServer) -> None:
    server.reply(completion(), completion())
    a = actor(v1(server), structured="json_object")
    ask(a, schema=SCHEMA)
    body = server.last.body
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system"
    assert json.dumps(SCHEMA) in system["content"]
    assert body["messages"][1] == {"role": "user", "content": "find skills"}
    # an existing system message is extended, not duplicated
    ask(a, schema=SCHEMA, messages=(Message("system", "be brief"), Message("user", "go")))
    messages = server.last.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("be brief\n\n")
    assert json.dumps(SCHEMA) in messages[0]["content"]


def test_schema_strict_mode_cannot_express_goes_as_a_non_strict_hint(server: StubServer) -> None:
    server.reply(completion('{"counts": {"a": 1}}'))
    schema = {
        "type": "object",
        "properties": {"counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
    }
    ask(actor(v1(server)), schema=schema)
    fmt = server.last.body["response_format"]
    assert fmt["json_schema"]["strict"] is False
    assert fmt["json_schema"]["schema"] == schema


def test_without_schema_json_object_mode_and_the_word_json(server: StubServer) -> None:
    server.reply(completion())
    ask(actor(v1(server)))
    body = server.last.body
    assert body["response_format"] == {"type": "json_object"}
    assert "JSON" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("json_schema", "json_schema"),
        ("json_object_schema", "json_object"),
        ("json_object", "json_object"),
        ("prompt", None),
    ],
)
def test_structured_plan(mode: str, kind: str | None) -> None:
    structured = plan(mode, request(schema=SCHEMA))
    fmt = structured.response_format
    assert (fmt or {}).get("type") == kind
    assert ("schema" in fmt) == (mode == "json_object_schema") if fmt else mode == "prompt"
    in_prompt = "JSON Schema" in structured.messages[0].content
    assert in_prompt == (mode != "json_schema")


def test_unknown_structured_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="structured must be one of"):
        actor("http://127.0.0.1:1/v1", structured="grammar")


def test_nulls_forced_by_strict_mode_are_dropped(server: StubServer) -> None:
    answer = {"subject_id": 1, "skills": [{"name": "sql", "years": None}], "note": None}
    server.reply(completion(json.dumps(answer)))
    response = ask(actor(v1(server)), schema=SCHEMA)
    # years is optional and not nullable: dropped; note is nullable: kept
    assert json.loads(response.text) == {"subject_id": 1, "skills": [{"name": "sql"}], "note": None}


def test_answers_needing_no_change_are_returned_verbatim(server: StubServer) -> None:
    server.reply(completion('{ "subject_id": 1,  "skills": [] }'), completion("not json"))
    assert ask(actor(v1(server)), schema=SCHEMA).text == '{ "subject_id": 1,  "skills": [] }'
    assert ask(actor(v1(server)), schema=SCHEMA).text == "not json"


@pytest.mark.parametrize(
    "reply",
    [
        completion(None),
        completion(choices=[]),
        Reply(
            200, {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []}
        ),
    ],
)
def test_empty_answers_are_empty_text(server: StubServer, reply: Reply) -> None:
    server.reply(reply)
    response = ask(actor(v1(server)), schema=SCHEMA)
    assert response.text == ""
    assert response.usage.calls == 1


def test_reask_is_plain_user_and_assistant_messages(server: StubServer) -> None:
    server.reply(completion())
    messages = (
        Message("system", "be precise"),
        Message("user", "find skills"),
        Message("assistant", "```json\n{}\n```"),
        Message("user", "Your previous answer did not satisfy the required JSON Schema."),
    )
    ask(actor(v1(server)), schema=SCHEMA, messages=messages)
    body = server.last.body
    assert body["messages"] == [m.as_dict() for m in messages]
    assert "tools" not in body and "tool_choice" not in body


def test_key_is_sent_and_defaults_to_not_needed(server: StubServer, fake_key: str) -> None:
    server.reply(completion(), completion())
    ask(actor(v1(server), api_key_env=KEY_ENV))
    assert server.last.headers["authorization"] == f"Bearer {fake_key}"
    ask(actor(v1(server)))
    assert server.last.headers["authorization"] == "Bearer not-needed"


def test_the_official_key_variable_is_not_sent_to_other_servers(
    server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-123456")
    server.reply(completion())
    ask(actor(v1(server)))
    assert "sk-real" not in server.last.headers["authorization"]
    official = actor("https://api.openai.com/v1")
    assert official.key_env == "OPENAI_API_KEY"


def test_model_not_found_says_how_to_list_models(server: StubServer) -> None:
    server.reply(
        Reply(
            404,
            {"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}},
        )
    )
    err = fail(actor(v1(server)))
    assert (err.kind, err.transient) == ("not_found", False)
    url = v1(server)
    assert str(err).startswith(
        f"model gpt-4o-mini not found at {url} (check the model name; GET {url}/models lists them)"
    )
    assert "does not exist" in str(err)


def test_not_found_without_v1_hints_at_the_base_url(server: StubServer) -> None:
    server.reply(Reply(404, "404 page not found"))
    assert "/v1" in str(fail(actor(server.url)))


def test_auth_names_the_variable(server: StubServer, fake_key: str) -> None:
    server.reply(echo_auth(401))
    err = fail(actor(v1(server), api_key_env=KEY_ENV))
    assert (err.kind, err.transient) == ("auth", False)
    assert str(err) == f"authentication failed at {v1(server)}: check the API key in ${KEY_ENV}"


@pytest.mark.parametrize(
    ("reply", "kind", "transient", "retry_after"),
    [
        (Reply(500, {"error": {"message": "oops"}}), "server", True, None),
        (Reply(502, "bad gateway"), "server", True, None),
        (
            Reply(503, {"error": {"message": "overloaded"}}, {"retry-after": "2"}),
            "server",
            True,
            2.0,
        ),
        (
            Reply(429, {"error": {"message": "rate"}}, {"Retry-After": "12"}),
            "rate_limit",
            True,
            12.0,
        ),
        (
            Reply(429, {"error": {"message": "rate"}}, {"retry-after-ms": "1500"}),
            "rate_limit",
            True,
            1.5,
        ),
        (Reply(429, {"error": {"message": "rate"}}), "rate_limit", True, None),
        (Reply(400, {"error": {"message": "Invalid schema"}}), "bad_request", False, None),
        (Reply(422, {"detail": "unprocessable"}), "bad_request", False, None),
        (Reply(403, {"error": {"message": "no access to model"}}), "auth", False, None),
        (Reply(200, "this is not json"), "bad_response", False, None),
        (Reply(200, {"choices": [{"message": None}]}), "bad_response", False, None),
    ],
)
def test_error_classification(
    server: StubServer, reply: Reply, kind: str, transient: bool, retry_after: float | None
) -> None:
    server.reply(reply)
    # an explicit mode: "auto" would take a 400 as a refusal of the format and try the next
    err = fail(actor(v1(server), structured="json_schema"))
    assert (err.kind, err.transient, err.retry_after) == (kind, transient, retry_after)


def test_bad_request_carries_the_server_message(server: StubServer) -> None:
    message = "Invalid schema for response_format 'x': In context=(), 'minLength' is not permitted."
    server.reply(Reply(400, {"error": {"message": message, "type": "invalid_request_error"}}))
    err = fail(actor(v1(server), structured="json_schema"))
    assert "'minLength' is not permitted" in str(err)
    assert "HTTP 400" in str(err)


def test_connection_refused(closed_port: int) -> None:
    err = fail(actor(f"http://127.0.0.1:{closed_port}/v1"))
    assert (err.kind, err.transient) == ("connection", True)


def test_timeout(server: StubServer) -> None:
    server.reply(Reply(200, {}, delay=1.5))
    err = fail(actor(v1(server), timeout=0.2))
    assert (err.kind, err.transient) == ("timeout", True)


def test_request_timeout_is_used_without_a_setting(server: StubServer) -> None:
    server.reply(Reply(200, {}, delay=1.5))
    assert fail(actor(v1(server)), timeout=0.2).kind == "timeout"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500])
def test_key_never_appears_in_errors(server: StubServer, fake_key: str, status: int) -> None:
    server.reply(echo_auth(status))
    a = actor(v1(server), api_key_env=KEY_ENV)
    err = fail(a)
    assert server.last.headers["authorization"] == f"Bearer {fake_key}"  # it was sent
    for text in (str(err), repr(err), repr(a), a.identity):
        assert fake_key not in text
        assert "Zq7fake" not in text
    assert err.__cause__ is None and err.__suppress_context__
