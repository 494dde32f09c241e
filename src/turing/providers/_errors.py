"""Shared by the providers: turn a failed call into a classified `ActorError`, keep keys out.

    ActorError.kind  transient (trying again may help)
    ├── timeout      no answer in time, HTTP 408
    ├── connection   refused, reset, unreachable
    ├── server       HTTP 5xx (unless its body says the request was invalid), 409
    └── rate_limit   HTTP 429, with Retry-After (seconds or an HTTP date) as retry_after
                     permanent (fails at once, says what to do)
    ├── auth         HTTP 401/403: names the variable that holds the key
    ├── not_found    HTTP 404: the model (each provider says how to get or list models)
    ├── bad_request  HTTP 400/422 and other 4xx, with the server's message, and a 5xx whose
    │                body is a request-validation error (llama-cpp-python answers a
    │                response_format it does not take with 500 "Input should be ..."): the
    │                same request fails the same way every time, whatever the status
    └── bad_response a success whose body the client cannot read

Every message goes through `redact`, which removes the API key itself and any
`Authorization` / `x-api-key` / `Bearer` value, so a key never reaches a message,
exception, log line or history row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from turing.errors import ActorError

REDACTED = "[redacted]"
MAX_MESSAGE = 500

_HEADER_VALUE = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key|api[-_]?key)"
    r"([\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;}\]]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=*-]{4,}")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.-]{6,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without the given secrets and without anything that looks like a credential."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _HEADER_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEY_LIKE.sub(REDACTED, text)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def retry_after(headers: Mapping[str, str] | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date)."""
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def server_message(body: object, fallback: str = "") -> str:
    """The human part of an error body: `error.message`, `error`, `message` or `detail`."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            inner = error.get("message")
            if isinstance(inner, str) and inner:
                return inner
        elif isinstance(error, str) and error:
            return error
        for key in ("message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if value:
                return str(value)
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


# What a server says when it rejects the request itself (its shape, a parameter) rather than
# failing to serve it: pydantic's messages (v2 and v1, as FastAPI servers send them), the
# names of the structured-output parameters, and the usual "invalid/unsupported" wordings.
# Go panics ("invalid memory address") and "llama runner process has terminated" do not match.
_VALIDATION = re.compile(
    r"(?i)input should be|validation errors? for|field required|extra inputs are not permitted"
    r"|value is not a valid|\bresponse_format\b|\bjson_schema\b|\bjson_object\b"
    r"|not supported|unsupported (?:parameter|value|argument|field|format|type)"
    r"|unrecognized request argument|unknown (?:parameter|field|argument)"
    r"|invalid (?:request|value|type|param|parameter|argument|input|schema|json|format)"
    r"|bad request|unprocessable"
)


# one error of pydantic's list, as Python prints it: {'type': ..., 'loc': (...), 'msg': ...}
_PYDANTIC_ERROR = re.compile(
    r"""['"]loc['"]:\s*[(\[]([^)\]]*)[)\]].*?['"]msg['"]:\s*(?:"([^"]*)"|'([^']*)')""", re.S
)


def validation_summary(message: str) -> str:
    """`loc: msg; ...` for a message that is pydantic's list of errors (FastAPI servers send
    it so: llama-cpp-python, vLLM), else the message as it is."""
    found = [
        (".".join(part.strip().strip("'\"") for part in loc.split(",") if part.strip()), a or b)
        for loc, a, b in _PYDANTIC_ERROR.findall(message)
    ]
    if not found:
        return message
    return "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in found)


def is_validation_message(message: str) -> bool:
    """True when an error's text says the request was invalid (see `_VALIDATION`)."""
    return _VALIDATION.search(message) is not None


def _clean(text: str, secrets: Iterable[str | None]) -> str:
    text = redact(" ".join(text.split()), secrets)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def auth_message(url: str, key_env: str | None, key_present: bool) -> str:
    if key_env is None:
        return (
            f"authentication failed at {url}: no API key is configured "
            "(set api_key_env in the actor's settings to the variable that holds it)"
        )
    missing = "" if key_present else f" (${key_env} is not set)"
    return f"authentication failed at {url}: check the API key in ${key_env}{missing}"


def status_error(
    status: int,
    *,
    message: str,
    url: str,
    not_found: str,
    key_env: str | None,
    secrets: Iterable[str | None],
    headers: Mapping[str, str] | None = None,
) -> ActorError:
    """Classify an HTTP error status; `not_found` is the provider's what-to-do message."""
    secrets = tuple(secrets)
    detail = _clean(validation_summary(message), secrets) or f"HTTP {status}"
    if status == 429:
        wait = retry_after(headers)
        after = f" (retry after {wait:g}s)" if wait is not None else ""
        return ActorError(
            f"rate limited at {url}{after}: {detail}",
            transient=True,
            retry_after=wait,
            kind="rate_limit",
        )
    if status >= 500 and is_validation_message(message):
        return ActorError(
            f"request rejected by {url} (HTTP {status}, a request-validation error, not "
            f"retried): {detail}",
            kind="bad_request",
        )
    if status >= 500 or status in (408, 409):
        kind = "timeout" if status == 408 else "server"
        return ActorError(
            f"server error {status} at {url}: {detail}",
            transient=True,
            retry_after=retry_after(headers),
            kind=kind,
        )
    if status in (401, 403):
        text = auth_message(url, key_env, any(secrets))
        if status == 403:  # the server's reason (e.g. no access to this model) helps here
            text += f" (HTTP 403: {detail})"
        return ActorError(text, kind="auth")
    if status == 404:
        return ActorError(f"{not_found} [HTTP 404: {detail}]", kind="not_found")
    return ActorError(f"request rejected by {url} (HTTP {status}): {detail}", kind="bad_request")


def timeout_error(url: str, seconds: float | None) -> ActorError:
    after = f" after {seconds:g}s" if seconds else ""
    return ActorError(f"no answer from {url}{after}", transient=True, kind="timeout")


def connection_error(url: str, detail: str, secrets: Iterable[str | None] = ()) -> ActorError:
    text = _clean(detail, secrets)
    return ActorError(
        f"cannot connect to {url}" + (f": {text}" if text else ""),
        transient=True,
        kind="connection",
    )


def bad_response(url: str, detail: str, secrets: Iterable[str | None] = ()) -> ActorError:
    return ActorError(
        f"unreadable response from {url}: {_clean(detail, secrets)}", kind="bad_response"
    )


def unknown_error(url: str, exc: BaseException, secrets: Iterable[str | None] = ()) -> ActorError:
    return ActorError(
        f"call to {url} failed: {type(exc).__name__}: {_clean(str(exc), secrets)}",
        kind="unknown",
    )


def describe(value: Any) -> str:
    """`str(value)`, or its type name when that is empty (some exceptions print nothing)."""
    text = str(value)
    return text or type(value).__name__
