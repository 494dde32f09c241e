"""Anthropic through the official `anthropic` client (extra `turing[anthropic]`).

Structured output goes through one tool whose `input_schema` is the step's schema, forced
with `tool_choice`; the answer is that tool call's input, as JSON text. System messages go
in `system=`. Earlier answers (re-asks) are plain assistant text and a re-ask is a plain
user message: no tool_result turns, since no tool is really being run.

The installed client's Messages API has no temperature or seed parameter, so neither is
sent; entries of the actor's `options` go into the request body as they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
import pydantic
from anthropic.types import (
    AssistantMessageParam,
    Message,
    MessageParam,
    ToolChoiceToolParam,
    ToolParam,
    UserMessageParam,
)

from turing.actors.base import ModelRequest, ModelResponse, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers import _errors
from turing.providers._common import CallParams, PerLoop, identity, key_env, schema_instruction
from turing.providers._schema import schema_name

OFFICIAL_HOST = "api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MAX_TOKENS = 4096
TOOL_DESCRIPTION = (
    "Record your answer. The input of this tool is the answer itself and must follow "
    "the schema exactly."
)


@dataclass(frozen=True)
class AnthropicCall:
    """What goes into `messages.create` besides the sampling parameters."""

    system: str | None
    messages: list[MessageParam]
    tool: ToolParam | None

    @property
    def tool_choice(self) -> ToolChoiceToolParam | None:
        if self.tool is None:
            return None
        return ToolChoiceToolParam(type="tool", name=self.tool["name"])


def _is_object_schema(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" or (
        "type" not in schema and isinstance(schema.get("properties"), Mapping)
    )


def build_call(request: ModelRequest) -> AnthropicCall:
    """System text, alternating user/assistant turns (same-role neighbours joined), tool."""
    system = [m.content for m in request.messages if m.role == "system"]
    turns: list[tuple[str, str]] = []
    for m in request.messages:
        if m.role == "system":
            continue
        if turns and turns[-1][0] == m.role:
            turns[-1] = (m.role, f"{turns[-1][1]}\n\n{m.content}")
        else:
            turns.append((m.role, m.content))
    messages: list[MessageParam] = [
        AssistantMessageParam(role="assistant", content=text)
        if role == "assistant"
        else UserMessageParam(role="user", content=text)
        for role, text in turns
    ]
    tool: ToolParam | None = None
    schema = request.schema
    if schema is not None and _is_object_schema(schema):
        tool = ToolParam(
            name=schema_name(request.schema_name),
            description=TOOL_DESCRIPTION,
            input_schema=dict(schema),
        )
    elif schema is not None:  # a tool's input is always an object: ask in text instead
        system.append(schema_instruction(schema))
    return AnthropicCall("\n\n".join(system) or None, messages, tool)


def _read(message: Message) -> tuple[str, Usage, str]:
    """The tool call's input as JSON text (else the text blocks), usage and model."""
    text = ""
    for block in message.content:
        if block.type == "tool_use":
            text = json.dumps(block.input, ensure_ascii=False)
            break
    else:
        text = "".join(block.text for block in message.content if block.type == "text")
    u = message.usage
    cached = (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0)
    return text, Usage(u.input_tokens + cached, u.output_tokens, 1), message.model


class AnthropicActor:
    """A Claude model; `settings` carries prices and limits for other layers."""

    def __init__(self, settings: ActorSettings) -> None:
        self.settings = settings
        self.key_env = key_env(settings, DEFAULT_KEY_ENV, OFFICIAL_HOST)
        self._clients: PerLoop[anthropic.AsyncAnthropic] = PerLoop(self._new_client, _close)

    @property
    def identity(self) -> str:
        return identity(self.settings)

    def __repr__(self) -> str:
        return f"AnthropicActor({self.identity!r})"

    def _key(self) -> str | None:
        return os.environ.get(self.key_env) if self.key_env else None

    def _new_client(self) -> anthropic.AsyncAnthropic:
        # an explicit key, never the client's own credential discovery: a key is sent only
        # where the settings say
        return anthropic.AsyncAnthropic(
            base_url=self.settings.url,
            api_key=self._key() or "not-needed",
            timeout=self.settings.timeout if self.settings.timeout is not None else 60.0,
            max_retries=0,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        params = CallParams.of(self.settings, request)
        call = build_call(request)
        try:
            message = await (await self._clients.get()).messages.create(
                model=self.settings.model,
                max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
                messages=call.messages,
                system=call.system if call.system is not None else anthropic.omit,
                tools=[call.tool] if call.tool is not None else anthropic.omit,
                tool_choice=call.tool_choice or anthropic.omit,
                timeout=params.timeout,
                extra_body=dict(self.settings.options) or None,
            )
        except Exception as exc:
            raise self._error(exc, params.timeout) from None
        try:
            text, usage, model = _read(message)
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise _errors.bad_response(self.settings.url, detail, (self._key(),)) from None
        return ModelResponse(text, usage, model=model or self.settings.model)

    def _error(self, exc: Exception, timeout: float) -> ActorError:
        url, model, secrets = self.settings.url, self.settings.model, (self._key(),)
        if isinstance(exc, ActorError):
            return exc
        if isinstance(exc, anthropic.APITimeoutError):
            return _errors.timeout_error(url, timeout)
        if isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__
            detail = _errors.describe(cause) if cause is not None else exc.message
            return _errors.connection_error(url, detail, secrets)
        if isinstance(exc, anthropic.APIStatusError):
            return _errors.status_error(
                exc.status_code,
                message=_errors.server_message(exc.body, exc.message),
                url=url,
                not_found=(
                    f"model {model} not found at {url} "
                    f"(check the model name; GET {url}/v1/models lists them)"
                ),
                key_env=self.key_env,
                secrets=secrets,
                headers=exc.response.headers,
            )
        if isinstance(exc, anthropic.CredentialsError):
            return ActorError(
                _errors.auth_message(url, self.key_env, self._key() is not None), kind="auth"
            )
        if isinstance(exc, anthropic.APIResponseValidationError | pydantic.ValidationError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        if isinstance(exc, json.JSONDecodeError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        return _errors.unknown_error(url, exc, secrets)

    async def aclose(self) -> None:
        """Close the running event loop's HTTP client now (it is closed with its loop anyway)."""
        await self._clients.aclose()


async def _close(client: anthropic.AsyncAnthropic) -> None:
    await client.close()


def create(settings: ActorSettings) -> AnthropicActor:
    return AnthropicActor(settings)
