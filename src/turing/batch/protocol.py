"""What Turing needs from a provider's batch API, in one small protocol: create a batch of
requests (each named by a custom id), find one again by the idempotency key it was created
with, look at it, read its results, cancel it. `turing.providers.openai_batch` and
`turing.providers.anthropic_batch` implement it with the official clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from turing.actors.base import ModelRequest

Outcome = Literal["completed", "expired", "cancelled", "failed"]


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str  # t{task}-a{attempt}-r{round}
    request: ModelRequest


@dataclass(frozen=True)
class Answer:
    """One request's answer: the text as the synchronous call would return it."""

    text: str
    input_tokens: int
    output_tokens: int
    model: str = ""
    tidy: bool = False  # OpenAI strict json_schema: drop the nulls strict mode added


@dataclass(frozen=True)
class Failure:
    """One request that got no answer: `kind` "errored" (the provider's error for this
    request: `transient` says whether asking again may help), "expired" or "cancelled"
    (never processed: the task returns to pending, its attempt not counted)."""

    kind: Literal["errored", "expired", "cancelled"]
    message: str
    transient: bool = True


Result = Answer | Failure


@dataclass(frozen=True)
class ProviderBatch:
    """A batch as the provider reports it: `ended` once no request is processed any more,
    with the `outcome` then; `raw` keeps what the client returned (for `batches show`)."""

    id: str
    status: str
    ended: bool
    outcome: Outcome | None = None
    succeeded: int = 0
    errored: int = 0
    expires_at: float | None = None
    raw: Mapping[str, Any] | None = None


class BatchClient(Protocol):
    provider: str

    async def create(
        self, requests: Sequence[BatchRequest], key: str, window: str
    ) -> ProviderBatch: ...

    async def find(self, key: str) -> ProviderBatch | None:
        """The batch created with idempotency key `key`, if the provider can tell."""
        ...

    async def retrieve(self, batch_id: str) -> ProviderBatch: ...

    async def results(self, batch: ProviderBatch) -> dict[str, Result]: ...

    async def cancel(self, batch_id: str) -> ProviderBatch: ...
