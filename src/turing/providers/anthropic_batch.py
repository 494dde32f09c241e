"""Anthropic's Message Batches through the official client: `messages.batches.create`
with one entry per request (custom id and the same params as the synchronous call: the
contract's schema as a forced tool), polled with `retrieve`, answers from `results`.

Anthropic batches carry no metadata, so a batch created but not recorded (the worker died
between the provider's answer and our write) cannot be found again by its key: `find`
says None, and the recovering worker returns its tasks to pending (see docs/models.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from turing.actors.base import ModelRequest
from turing.batch.protocol import Answer, BatchRequest, Failure, ProviderBatch, Result
from turing.providers._common import CallParams
from turing.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicActor, _read, build_call


class AnthropicBatches:
    provider = "anthropic"

    def __init__(self, actor: AnthropicActor) -> None:
        self.actor = actor
        self.settings = actor.settings

    def params(self, request: ModelRequest) -> dict[str, Any]:
        """One request's `params`, as the synchronous `messages.create` sends them."""
        call_params = CallParams.of(self.settings, request)
        call = build_call(request)
        params: dict[str, Any] = {
            "model": self.settings.model,
            "max_tokens": call_params.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": call.messages,
        }
        if call.system is not None:
            params["system"] = call.system
        if call.tool is not None:
            params["tools"] = [call.tool]
            params["tool_choice"] = call.tool_choice
        return params | dict(self.settings.options)

    async def _client(self) -> Any:
        return await self.actor._clients.get()

    async def create(
        self, requests: Sequence[BatchRequest], key: str, window: str
    ) -> ProviderBatch:
        entries = [{"custom_id": r.custom_id, "params": self.params(r.request)} for r in requests]
        try:
            batch = await (await self._client()).messages.batches.create(requests=entries)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return _status(batch)

    async def find(self, key: str) -> ProviderBatch | None:
        return None  # no metadata to find a batch by

    async def retrieve(self, batch_id: str) -> ProviderBatch:
        try:
            batch = await (await self._client()).messages.batches.retrieve(batch_id)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return _status(batch)

    async def cancel(self, batch_id: str) -> ProviderBatch:
        try:
            batch = await (await self._client()).messages.batches.cancel(batch_id)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return _status(batch)

    async def results(self, batch: ProviderBatch) -> dict[str, Result]:
        out: dict[str, Result] = {}
        try:
            stream = await (await self._client()).messages.batches.results(batch.id)
            async for entry in stream:
                out[entry.custom_id] = self._result(entry.result)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return out

    def _result(self, result: Any) -> Result:
        if result.type == "succeeded":
            text, usage, model = self.actor._read(_read, result.message)
            return Answer(text, usage.input_tokens, usage.output_tokens, model)
        if result.type == "expired":
            return Failure("expired", "the batch expired before this request was processed")
        if result.type == "canceled":
            return Failure("cancelled", "the batch was cancelled before this request")
        error = getattr(getattr(result, "error", None), "error", None)
        kind = str(getattr(error, "type", "error"))
        message = str(getattr(error, "message", "errored"))
        transient = kind in ("api_error", "overloaded_error", "rate_limit_error")
        return Failure("errored", f"{kind}: {message}", transient)


def _status(batch: Any) -> ProviderBatch:
    counts = batch.request_counts
    ended = batch.processing_status == "ended"
    outcome = None
    if ended:
        if counts.canceled and batch.cancel_initiated_at is not None:
            outcome = "cancelled"
        elif counts.expired:
            outcome = "expired"
        else:
            outcome = "completed"
    expires = batch.expires_at.timestamp() if batch.expires_at is not None else None
    return ProviderBatch(
        id=batch.id,
        status=batch.processing_status,
        ended=ended,
        outcome=outcome,  # type: ignore[arg-type]
        succeeded=counts.succeeded,
        errored=counts.errored,
        expires_at=expires,
        raw=batch.model_dump(mode="json"),
    )
