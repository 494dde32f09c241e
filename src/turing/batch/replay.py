"""The executor, unchanged, on answers that came through a batch.

A batch request is what the executor would send: the task is run by the ordinary executor
with a `ReplayActor` in place of the batch-enabled actor. At submission the actor records
the first request it is asked and stops the run there (`captured`). At ingestion it serves
the batch's answer (and, for a re-ask round, the earlier rounds' answers first, so the
executor rebuilds the same conversation: the bad answer and its violations); what the
executor does next is the synchronous path's own repair, validation, subject check and
checks. A further request is captured for the next batch, or sent to the real actor
(`then="delegate"`: re-asks asked synchronously).

Each replayed request must hash as it did when submitted: a prompt or workflow edited
while its batch was out makes the answer `stale` (the task is asked again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from turing._json import digest
from turing.actors.base import Actor, ModelRequest, ModelResponse, Usage
from turing.batch.protocol import Answer, Failure
from turing.errors import ActorError


def request_hash(request: ModelRequest) -> str:
    """What makes two requests the same question (messages, schema, sampling)."""
    return digest(
        {
            "messages": [m.as_dict() for m in request.messages],
            "schema": request.schema,
            "schema_name": request.schema_name,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
    )


@dataclass(frozen=True)
class Replayed:
    """One answer to serve: the request hash it answered and the answer (or failure)."""

    request_hash: str
    result: Answer | Failure


class Stop(Exception):
    """The run stops here: its next request goes to a batch (or the replay was stale)."""


class ReplayActor:
    """Stands in for a batch-enabled actor for one task's run (see the module doc)."""

    handles_timeout = True  # replayed answers take no time; a delegate handles its own

    def __init__(
        self,
        inner: Actor,
        answers: Sequence[Replayed] = (),
        *,
        then: Literal["capture", "delegate"] = "capture",
        settings: Any = None,
    ) -> None:
        self.inner = inner
        self.answers = list(answers)
        self.then = then
        self.settings = settings  # ActorSettings: prices the answers at the batch rate
        self.calls = 0
        self.captured: ModelRequest | None = None
        self.stale = False

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def complete(self, request: ModelRequest) -> ModelResponse:
        n, self.calls = self.calls, self.calls + 1
        if n < len(self.answers):
            replayed = self.answers[n]
            if replayed.request_hash != request_hash(request):
                self.stale = True
                raise Stop("the request changed since it was submitted")
            return self._serve(replayed.result, request)
        if self.then == "capture":
            self.captured = request
            raise Stop("the request goes into the next batch")
        return await self.inner.complete(request)

    def _serve(self, result: Answer | Failure, request: ModelRequest) -> ModelResponse:
        if isinstance(result, Failure):
            raise ActorError(f"batch: {result.message}", transient=result.transient, kind="batch")
        text = result.text
        if result.tidy:
            from turing.providers.openai_batch import tidy

            text = tidy(text, request)
        cost = 0.0
        if self.settings is not None:
            cost = self.settings.batch_cost(result.input_tokens, result.output_tokens)
        usage = Usage(result.input_tokens, result.output_tokens, 1, cost)
        return ModelResponse(text, usage, result.model)
