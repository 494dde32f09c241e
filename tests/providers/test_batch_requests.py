"""A batch request is the synchronous request: the body of each OpenAI batch line and the
params of each Anthropic batch entry equal what the synchronous call sent for the same
request (structured output, messages, token limits, options), read back from the wire."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers.stub import StubServer
from providers.test_anthropic import SCHEMA as ANTHROPIC_SCHEMA
from providers.test_anthropic import message
from providers.test_openai import SCHEMA, completion
from turing.actors.base import Message, ModelRequest
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.providers.anthropic_batch import AnthropicBatches
from turing.providers.openai_batch import OpenAIBatches

CONVERSATION = (
    Message("system", "You extract skills."),
    Message("user", "find skills"),
    Message("assistant", '{"skills": 3}'),
    Message("user", "Your previous answer did not satisfy the required JSON Schema."),
)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"structured": "json_object", "max_tokens": 50, "seed": 4},
        {"structured": "prompt", "options": {"top_p": 0.5}, "extra_body": {"top_k": 3}},
    ],
)
def test_an_openai_batch_line_is_the_synchronous_body(
    server: StubServer, settings: dict[str, Any]
) -> None:
    spec = ActorSettings.parse("openai:gpt-4o-mini", base_url=f"{server.url}/v1", **settings)
    actor = create(spec)
    request = ModelRequest(CONVERSATION, schema=SCHEMA, schema_name="skills", temperature=0.2)
    server.replies.append(completion())
    asyncio.run(actor.complete(request))
    [sent] = server.requests
    assert OpenAIBatches(actor).body(request) == sent.body  # type: ignore[arg-type]


def test_an_anthropic_batch_entry_is_the_synchronous_body(server: StubServer) -> None:
    spec = ActorSettings.parse("anthropic:claude-test-1", base_url=server.url, max_tokens=300)
    actor = create(spec)
    request = ModelRequest(CONVERSATION, schema=ANTHROPIC_SCHEMA, schema_name="skills")
    server.replies.append(message())
    asyncio.run(actor.complete(request))
    [sent] = server.requests
    assert AnthropicBatches(actor).params(request) == sent.body  # type: ignore[arg-type]
