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
from dataclasses import dataclass
from typing import Any, ClassVar

import openai
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
from turing.errors import ConfigError
from turing.providers._common import (
    CallParams,
    host_of,
    is_local,
    schema_instruction,
    with_system_text,
)
from turing.providers._schema import NotStrictable, drop_added_nulls, schema_name, strict_schema
from turing.providers._sdk import SDKActor

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


class OpenAIActor(SDKActor):
    """A model behind an OpenAI-compatible `/chat/completions`; `settings` for other layers."""

    sdk: ClassVar[Any] = openai
    client_class = openai.AsyncOpenAI
    default_key_env = DEFAULT_KEY_ENV
    official_host = OFFICIAL_HOST

    def __init__(self, settings: ActorSettings) -> None:
        if settings.structured not in MODES:
            raise ConfigError(
                f"actor {settings.name or settings.model!r}: structured must be one of "
                f"{', '.join(MODES)}, not {settings.structured!r}"
            )
        super().__init__(settings)

    def not_found(self) -> str:
        url = self.settings.url
        hint = "" if url.endswith("/v1") else "; compatible servers usually serve under /v1"
        return (
            f"model {self.settings.model} not found at {url} "
            f"(check the model name; GET {url}/models lists them{hint})"
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
        text, usage, model = self._read(_read, completion)
        if structured.strict and request.schema is not None and text:
            text = _without_added_nulls(text, request.schema)
        return ModelResponse(text, usage, model=model or self.settings.model)


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


def create(settings: ActorSettings) -> OpenAIActor:
    return OpenAIActor(settings)
