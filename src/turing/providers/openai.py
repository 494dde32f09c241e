"""OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, LM Studio, Ollama's `/v1`) through the
official `openai` client, with a configurable base URL.

Structured output (`settings.structured`):
- "json_schema": `response_format` json_schema with `strict: true` and the schema rewritten
  to the strict subset (`_schema.strict_schema`); a schema strict mode cannot express is
  sent as a non-strict hint instead;
- "json_object": JSON mode, with the schema spelled out in the system message;
- "auto" (default): json_schema for api.openai.com and servers on this machine (vLLM,
  llama.cpp, LM Studio, Ollama, the simulator), json_object elsewhere.

The client never retries (`max_retries=0`): retrying is Turing's job, with the error's
classification.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import openai
import pydantic
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.completion_create_params import ResponseFormat

from turing.actors.base import Message, ModelRequest, ModelResponse, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError, ConfigError
from turing.providers import _errors
from turing.providers._common import (
    CallParams,
    PerLoop,
    host_of,
    identity,
    is_local,
    key_env,
    schema_instruction,
    with_system_text,
)
from turing.providers._schema import NotStrictable, drop_added_nulls, schema_name, strict_schema

OFFICIAL_HOST = "api.openai.com"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
MODES = ("auto", "json_schema", "json_object")


@dataclass(frozen=True)
class StructuredPlan:
    """How one request asks for JSON: the `response_format`, the messages to send, and
    whether the answer came through the strict rewrite (so its added nulls are dropped)."""

    response_format: ResponseFormat
    messages: tuple[Message, ...]
    strict: bool


def structured_mode(settings: ActorSettings) -> str:
    """ "json_schema" or "json_object" for these settings ("auto" resolved by host)."""
    if settings.structured == "auto":
        local = is_local(settings.url)
        return "json_schema" if local or host_of(settings.url) == OFFICIAL_HOST else "json_object"
    return settings.structured


def plan(settings: ActorSettings, request: ModelRequest) -> StructuredPlan:
    schema = request.schema
    if schema is None:
        messages = request.messages
        if not any("json" in m.content.lower() for m in messages):
            messages = tuple(with_system_text(messages, "Answer with a single JSON object."))
        return StructuredPlan({"type": "json_object"}, messages, strict=False)
    if structured_mode(settings) == "json_object":
        messages = tuple(with_system_text(request.messages, schema_instruction(schema)))
        return StructuredPlan({"type": "json_object"}, messages, strict=False)
    name = schema_name(request.schema_name)
    try:
        strict = strict_schema(schema)
    except NotStrictable:
        return StructuredPlan(
            {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema), "strict": False},
            },
            request.messages,
            strict=False,
        )
    return StructuredPlan(
        {"type": "json_schema", "json_schema": {"name": name, "schema": strict, "strict": True}},
        request.messages,
        strict=True,
    )


def _message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=message.content)
    if message.role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
    return ChatCompletionUserMessageParam(role="user", content=message.content)


class OpenAIActor:
    """A model behind an OpenAI-compatible `/chat/completions`; `settings` for other layers."""

    def __init__(self, settings: ActorSettings) -> None:
        if settings.structured not in MODES:
            raise ConfigError(
                f"actor {settings.name or settings.model!r}: structured must be one of "
                f"{', '.join(MODES)}, not {settings.structured!r}"
            )
        self.settings = settings
        self.key_env = key_env(settings, DEFAULT_KEY_ENV, OFFICIAL_HOST)
        self._clients: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_client, _close)

    @property
    def identity(self) -> str:
        return identity(self.settings)

    def __repr__(self) -> str:
        return f"OpenAIActor({self.identity!r})"

    def _key(self) -> str | None:
        return os.environ.get(self.key_env) if self.key_env else None

    def _new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.settings.url,
            api_key=self._key() or "not-needed",
            timeout=self.settings.timeout if self.settings.timeout is not None else 60.0,
            max_retries=0,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        params = CallParams.of(self.settings, request)
        structured = plan(self.settings, request)
        # api.openai.com wants max_completion_tokens (newer models reject max_tokens);
        # compatible servers know max_tokens
        official = host_of(self.settings.url) == OFFICIAL_HOST
        limit = params.max_tokens if params.max_tokens is not None else openai.omit
        try:
            completion = await (await self._clients.get()).chat.completions.create(
                model=self.settings.model,
                messages=[_message(m) for m in structured.messages],
                response_format=structured.response_format,
                temperature=params.temperature,
                seed=params.seed if params.seed is not None else openai.omit,
                max_completion_tokens=limit if official else openai.omit,
                max_tokens=openai.omit if official else limit,
                timeout=params.timeout,
                extra_body=dict(self.settings.options) or None,
            )
        except Exception as exc:
            raise self._error(exc, params.timeout) from None
        try:
            text, usage, model = _read(completion)
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise _errors.bad_response(self.settings.url, detail, (self._key(),)) from None
        if structured.strict and request.schema is not None and text:
            text = _without_added_nulls(text, request.schema)
        return ModelResponse(text, usage, model=model or self.settings.model)

    def _error(self, exc: Exception, timeout: float) -> ActorError:
        url, model, secrets = self.settings.url, self.settings.model, (self._key(),)
        if isinstance(exc, ActorError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return _errors.timeout_error(url, timeout)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = _errors.describe(cause) if cause is not None else exc.message
            return _errors.connection_error(url, detail, secrets)
        if isinstance(exc, openai.APIStatusError):
            hint = "" if url.endswith("/v1") else "; compatible servers usually serve under /v1"
            return _errors.status_error(
                exc.status_code,
                message=_errors.server_message(exc.body, exc.message),
                url=url,
                not_found=(
                    f"model {model} not found at {url} "
                    f"(check the model name; GET {url}/models lists them{hint})"
                ),
                key_env=self.key_env,
                secrets=secrets,
                headers=exc.response.headers,
            )
        if isinstance(exc, openai.APIResponseValidationError | pydantic.ValidationError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        if isinstance(exc, json.JSONDecodeError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        return _errors.unknown_error(url, exc, secrets)

    async def aclose(self) -> None:
        """Close the running event loop's HTTP client now (it is closed with its loop anyway)."""
        await self._clients.aclose()


def _read(completion: ChatCompletion) -> tuple[str, Usage, str]:
    """Text, usage and model of a completion; no choice or no content is an empty answer."""
    u = completion.usage
    usage = Usage(u.prompt_tokens or 0, u.completion_tokens or 0, 1) if u else Usage(calls=1)
    content = completion.choices[0].message.content if completion.choices else None
    return content or "", usage, completion.model


def _without_added_nulls(text: str, schema: Any) -> str:
    """The answer with the nulls strict mode forced for optional fields removed (if any)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    cleaned = drop_added_nulls(value, schema)
    return text if cleaned == value else json.dumps(cleaned, ensure_ascii=False)


async def _close(client: openai.AsyncOpenAI) -> None:
    await client.close()


def create(settings: ActorSettings) -> OpenAIActor:
    return OpenAIActor(settings)
