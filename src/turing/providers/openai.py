"""OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, LM Studio, Ollama's `/v1`) through the
official `openai` client, with a configurable base URL.

Structured output (`settings.structured`, strongest first; see `STRUCTURED_MODES`):
- "json_schema": `response_format` json_schema with `strict: true` and the schema rewritten
  to the strict subset (`_schema.strict_schema`); a schema strict mode cannot express is
  sent as a non-strict hint instead;
- "json_object_schema": `{"type": "json_object", "schema": <the contract's schema>}` (what
  llama.cpp's server and llama-cpp-python constrain decoding with), the schema in the
  system message too (for a server that takes JSON mode but ignores `schema`);
- "json_object": JSON mode, with the schema spelled out in the system message;
- "prompt": no `response_format`, the schema in the system message; the executor's repair
  takes the JSON out of whatever comes back.

"auto" (the default) negotiates: it tries the modes in that order and falls back to the next
when the server refuses the request itself (`_errors`: a 4xx other than auth/404/408/409/429,
or a 5xx whose body is a request-validation error such as llama-cpp-python's 500 "Input
should be 'text' or 'json_object'"). The mode that worked is remembered for the process per
(base URL, model), so later calls go straight to it, and the call that found it says so in
history (the call's `error` column: "structured output negotiated: ..."). Only one call per
(base URL, model) and event loop negotiates; the others wait for its outcome. Any other
error (a timeout, a real 500, a 429) ends the call as usual and nothing is remembered. An
explicit mode is sent as it is: refused, the call fails (permanently, not retried).

The client never retries (`max_retries=0`): retrying is Turing's job, with the error's
classification.
"""

from __future__ import annotations

import asyncio
import json
import weakref
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

from turing.actors.base import Message, ModelRequest, ModelResponse, Usage
from turing.actors.managed import RetriedResponse
from turing.actors.settings import STRUCTURED_MODES, ActorSettings
from turing.errors import ActorError, ConfigError
from turing.providers import _errors
from turing.providers._common import CallParams, host_of, schema_instruction, with_system_text
from turing.providers._schema import NotStrictable, drop_added_nulls, schema_name, strict_schema
from turing.providers._sdk import SDKActor

OFFICIAL_HOST = "api.openai.com"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
MODES = ("auto", *STRUCTURED_MODES)
JSON_HINT = "Answer with a single JSON object."


@dataclass(frozen=True)
class StructuredPlan:
    """How one request asks for JSON: the `response_format` (None: none sent), the messages
    to send, and whether the answer came through the strict rewrite (so its added nulls are
    dropped)."""

    response_format: dict[str, Any] | None
    messages: tuple[Message, ...]
    strict: bool


def _with_json_word(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """JSON mode needs the word "json" in the messages (OpenAI refuses it otherwise)."""
    if any("json" in m.content.lower() for m in messages):
        return messages
    return tuple(with_system_text(messages, JSON_HINT))


def plan(mode: str, request: ModelRequest) -> StructuredPlan:
    """The request's structured-output part in `mode` (one of `STRUCTURED_MODES`)."""
    schema = request.schema
    if schema is None:
        fmt = None if mode == "prompt" else {"type": "json_object"}
        return StructuredPlan(fmt, _with_json_word(request.messages), strict=False)
    if mode == "json_schema":
        name = schema_name(request.schema_name)
        try:
            strict = strict_schema(schema)
        except NotStrictable:
            spec = {"name": name, "schema": dict(schema), "strict": False}
            return StructuredPlan(
                {"type": "json_schema", "json_schema": spec}, request.messages, False
            )
        spec = {"name": name, "schema": strict, "strict": True}
        return StructuredPlan({"type": "json_schema", "json_schema": spec}, request.messages, True)
    messages = tuple(with_system_text(request.messages, schema_instruction(schema)))
    if mode == "json_object_schema":
        return StructuredPlan({"type": "json_object", "schema": dict(schema)}, messages, False)
    if mode == "json_object":
        return StructuredPlan({"type": "json_object"}, messages, False)
    return StructuredPlan(None, messages, strict=False)


class Negotiated:
    """The structured mode that worked per (base URL, model), for the process."""

    def __init__(self) -> None:
        self.modes: dict[tuple[str, str], str] = {}
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def get(self, url: str, model: str) -> str | None:
        return self.modes.get((url, model))

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(key, asyncio.Lock())

    def clear(self) -> None:
        self.modes.clear()


NEGOTIATED = Negotiated()


def negotiated_mode(url: str, model: str) -> str | None:
    """The mode "auto" settled on for this base URL and model in this process (None: not yet)."""
    return NEGOTIATED.get(url.rstrip("/"), model)


class Refused(ActorError):
    """The server refused the request itself; `summary` says how, briefly (for the note)."""

    def __init__(self, message: str, summary: str) -> None:
        super().__init__(message, kind="bad_request")
        self.summary = summary


def _refusal(exc: Exception) -> str:
    """`HTTP 500: body.response_format.type: Input should be ...` for a refused request."""
    if isinstance(exc, openai.APIStatusError):
        message = _errors.server_message(exc.body, exc.message)
        return f"HTTP {exc.status_code}: {_errors.validation_summary(message)}"
    return str(exc)


def refuses_format(exc: ActorError) -> bool:
    """The server refused the request itself (not the model being missing, a key, a limit):
    the next weaker structured mode may be taken."""
    return exc.kind == "bad_request"


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
        if self.settings.structured != "auto":
            return await self._send(self.settings.structured, request, params)
        key = (self.settings.url, self.settings.model)
        mode = NEGOTIATED.modes.get(key)
        if mode is not None:
            return await self._send(mode, request, params)
        async with NEGOTIATED.lock(key):  # one call negotiates; the others wait for it
            mode = NEGOTIATED.modes.get(key)
            if mode is not None:
                return await self._send(mode, request, params)
            return await self._negotiate(key, request, params)

    async def _negotiate(
        self, key: tuple[str, str], request: ModelRequest, params: CallParams
    ) -> ModelResponse:
        """Try the modes strongest first until one is taken; remember it, say so on the call."""
        refused: list[str] = []
        for mode in STRUCTURED_MODES:
            try:
                response = await self._send(mode, request, params)
            except ActorError as exc:
                if not refuses_format(exc) or mode == STRUCTURED_MODES[-1]:
                    raise
                reason = exc.summary if isinstance(exc, Refused) else str(exc)
                refused.append(f"{mode} refused ({_short(reason)})")
                continue
            NEGOTIATED.modes[key] = mode
            note = f"structured output negotiated: {mode}" + (
                f" after {'; '.join(refused)}" if refused else ""
            )
            return RetriedResponse(response.text, response.usage, response.model, retried=note)
        raise AssertionError("unreachable: the last mode raises")  # pragma: no cover

    async def _send(self, mode: str, request: ModelRequest, params: CallParams) -> ModelResponse:
        structured = plan(mode, request)
        # api.openai.com wants max_completion_tokens (newer models reject max_tokens);
        # compatible servers know max_tokens
        official = host_of(self.settings.url) == OFFICIAL_HOST
        limit = params.max_tokens if params.max_tokens is not None else openai.omit
        extra = {**self.settings.options, **self.settings.extra_body}
        fmt: Any = structured.response_format
        try:
            completion = await (await self._clients.get()).chat.completions.create(
                model=self.settings.model,
                messages=[_message(m) for m in structured.messages],
                response_format=fmt if fmt is not None else openai.omit,
                temperature=params.temperature,
                seed=params.seed if params.seed is not None else openai.omit,
                max_completion_tokens=limit if official else openai.omit,
                max_tokens=openai.omit if official else limit,
                timeout=params.timeout,
                extra_body=extra or None,
            )
        except Exception as exc:
            error = self._error(exc, params.timeout)
            if not refuses_format(error):
                raise error from None
            if self.settings.structured != "auto":
                raise ActorError(
                    f"{error} (structured = {mode!r} is set for this actor and sent as it "
                    'is; structured = "auto" negotiates a mode the server takes)',
                    kind=error.kind,
                ) from None
            raise Refused(str(error), _refusal(exc)) from None
        text, usage, model = self._read(_read, completion)
        if structured.strict and request.schema is not None and text:
            text = _without_added_nulls(text, request.schema)
        return ModelResponse(text, usage, model=model or self.settings.model)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
