"""Error classification and redaction shared by the providers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from turing.providers._errors import (
    REDACTED,
    redact,
    retry_after,
    server_message,
    status_error,
)

KEY = "sk-test-Zq7fakeKEY0123456789abcdef"
NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        f"invalid key {KEY}",
        f"Authorization: Bearer {KEY}",
        f'{{"headers": {{"Authorization": "Bearer {KEY}"}}}}',
        f"x-api-key: {KEY}",
        f"'x-api-key': '{KEY}'",
        f"api_key={KEY}&x=1",
    ],
)
def test_redact_removes_the_key_and_credential_values(text: str) -> None:
    out = redact(text, [KEY])
    assert KEY not in out
    assert "Zq7fake" not in out
    assert REDACTED in out


def test_redact_without_knowing_the_key_still_removes_credential_shapes() -> None:
    assert "abcdef123456" not in redact("Authorization: Bearer abcdef123456")
    assert "abcdef123456" not in redact("token was sk-abcdef123456")
    assert "Zq7" not in redact("Incorrect API key provided: sk-proj-Zq7****cdef.")


def test_redact_keeps_ordinary_text() -> None:
    text = "model qwen2.5:7b not found, try pulling it first"
    assert redact(text, [None, ""]) == text


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "Mon, 05 Jan 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Mon, 05 Jan 2026 11:00:00 GMT"}, 0.0),  # in the past
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, 0.0),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (402, "bad_request", False),
        (403, "auth", False),
        (404, "not_found", False),
        (408, "timeout", True),
        (409, "server", True),
        (413, "bad_request", False),
        (422, "bad_request", False),
        (429, "rate_limit", True),
        (500, "server", True),
        (502, "server", True),
        (503, "server", True),
        (529, "server", True),
    ],
)
def test_status_classification(status: int, kind: str, transient: bool) -> None:
    err = status_error(
        status,
        message=f"boom for {KEY}",
        url="http://h:1",
        not_found="model m not found",
        key_env="MY_KEY",
        secrets=[KEY],
        headers={"Retry-After": "3"},
    )
    assert (err.kind, err.transient) == (kind, transient)
    assert KEY not in str(err)
    if status == 429:
        assert err.retry_after == 3.0
        assert "retry after 3s" in str(err)


LLAMA_CPP_PYTHON_500 = (
    "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}]"
)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (500, LLAMA_CPP_PYTHON_500, "bad_request"),  # llama-cpp-python: pydantic, sent as 500
        (500, "1 validation error for ChatRequest", "bad_request"),
        (500, "response_format json_schema is not supported", "bad_request"),
        (503, "Invalid request: unknown field 'schema'", "bad_request"),
        (500, "llama runner process has terminated: exit status 2", "server"),
        (500, "runtime error: invalid memory address or nil pointer dereference", "server"),
        (500, "The server had an error while processing your request.", "server"),
        (502, "Bad Gateway", "server"),
    ],
)
def test_a_validation_error_is_permanent_whatever_its_status(
    status: int, message: str, kind: str
) -> None:
    err = status_error(
        status, message=message, url="http://h:1", not_found="", key_env=None, secrets=[]
    )
    assert (err.kind, err.transient) == (kind, kind == "server")


def test_pydantic_errors_are_summarised() -> None:
    err = status_error(
        500, message=LLAMA_CPP_PYTHON_500, url="http://h:1", not_found="", key_env=None, secrets=[]
    )
    assert str(err) == (
        "request rejected by http://h:1 (HTTP 500, a request-validation error, not retried): "
        "body.response_format.type: Input should be 'text' or 'json_object'"
    )


def test_auth_message_names_the_variable_and_never_the_key() -> None:
    err = status_error(
        401,
        message=f"Incorrect API key provided: {KEY}",
        url="https://api.example.com/v1",
        not_found="",
        key_env="MY_KEY",
        secrets=[KEY],
    )
    assert (
        str(err)
        == "authentication failed at https://api.example.com/v1: check the API key in $MY_KEY"
    )


def test_auth_message_when_the_variable_is_unset_or_unconfigured() -> None:
    unset = status_error(401, message="", url="u", not_found="", key_env="K", secrets=[None])
    assert "$K is not set" in str(unset)
    none = status_error(401, message="", url="u", not_found="", key_env=None, secrets=[])
    assert "no API key is configured" in str(none)


def test_bad_request_carries_the_server_message() -> None:
    err = status_error(
        400,
        message="Invalid schema for response_format 'x': 'minLength' is not permitted.",
        url="u",
        not_found="",
        key_env=None,
        secrets=[],
    )
    assert "'minLength' is not permitted" in str(err)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"message": "m1", "type": "x"}}, "m1"),
        ({"error": "m2"}, "m2"),
        ({"message": "m3"}, "m3"),
        ({"detail": "m4"}, "m4"),
        ({"detail": [{"loc": ["x"]}]}, "[{'loc': ['x']}]"),
        ("plain", "plain"),
        (None, "fallback"),
    ],
)
def test_server_message(body: object, expected: str) -> None:
    assert server_message(body, "fallback") == expected
