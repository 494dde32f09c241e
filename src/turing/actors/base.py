"""The actor protocol every model provider implements.

One async method, `complete`, taking a `ModelRequest` (messages, the JSON Schema the step
expects so a provider can pass it down as structured output, sampling parameters, timeout)
and returning a `ModelResponse` (raw text plus token usage). Everything else (repair,
validation, re-asks, history) is the executor's job, so a provider stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Usage:
    """What one or more calls spent; adding two sums them.

    `cost` is in the currency of the actor's prices (per million tokens); `cached` counts
    answers served from the response cache (they spend nothing); `retries` counts transient
    failures that were retried before an answer came.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost: float = 0.0
    cached: int = 0
    retries: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.calls + other.calls,
            self.cost + other.cost,
            self.cached + other.cached,
            self.retries + other.retries,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "calls": self.calls,
            "cost": round(self.cost, 8),
            "cached": self.cached,
            "retries": self.retries,
        }


@dataclass(frozen=True)
class ModelRequest:
    """What a step asks of a model.

    `variables` are the values the prompt was rendered from; real providers ignore them,
    deterministic offline actors (and test doubles) may use them instead of parsing text.
    """

    messages: tuple[Message, ...]
    schema: Mapping[str, Any] | None = None
    schema_name: str = "output"
    temperature: float = 0.0
    timeout: float = 60.0
    max_tokens: int | None = None
    seed: int | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    workflow: str = ""
    # False for re-asks and for runs of a task that failed before: a cached answer there
    # would replay what is being corrected (see `turing.cache`)
    from_cache: bool = True


@dataclass(frozen=True)
class ModelResponse:
    text: str
    usage: Usage = Usage()
    model: str = ""


@runtime_checkable
class Actor(Protocol):
    """A model behind a provider. `identity` goes into workflow fingerprints."""

    @property
    def identity(self) -> str: ...

    async def complete(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class Quotes(Protocol):
    """An actor that can say, before a call, what it may spend at most (its prompt's
    tokens, `max_tokens` or an estimate for the answer, priced): budgets reserve this."""

    def quote(self, request: ModelRequest) -> Usage: ...


@runtime_checkable
class Remembers(Protocol):
    """An actor that keeps answers (a response cache): told when an answer validated, the
    only answers it may keep."""

    async def accepted(self, request: ModelRequest, response: ModelResponse) -> None: ...


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token) for actors that cannot count."""
    return max(1, (len(text) + 3) // 4) if text else 0
