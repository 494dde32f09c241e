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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import anthropic
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
from turing.providers._common import CallParams, schema_instruction
from turing.providers._schema import schema_name
from turing.providers._sdk import SDKActor

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


class AnthropicActor(SDKActor):
    """A Claude model; `settings` carries prices and limits for other layers."""

    sdk: ClassVar[Any] = anthropic
    client_class = anthropic.AsyncAnthropic
    default_key_env = DEFAULT_KEY_ENV
    official_host = OFFICIAL_HOST

    def not_found(self) -> str:
        url = self.settings.url
        return (
            f"model {self.settings.model} not found at {url} "
            f"(check the model name; GET {url}/v1/models lists them)"
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
        text, usage, model = self._read(_read, message)
        return ModelResponse(text, usage, model=model or self.settings.model)


def create(settings: ActorSettings) -> AnthropicActor:
    return AnthropicActor(settings)
