"""OpenAI's Batch API through the official client: the requests as a JSONL file uploaded
with purpose "batch" (`files.create`), a batch for `/v1/chat/completions` over it
(`batches.create`, the idempotency key in its metadata), polled with `batches.retrieve`,
results read from its output and error files (`files.content`).

Each line's body is what the synchronous call sends (the same structured-output plan, the
same token limit parameter); "auto" structured output takes the mode negotiated with this
server in this process, else json_schema (a batch cannot negotiate: it is answered later).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from openai.types.chat import ChatCompletion

from turing.actors.base import ModelRequest
from turing.batch.protocol import Answer, BatchRequest, Failure, ProviderBatch, Result
from turing.providers._common import CallParams, host_of
from turing.providers.openai import (
    OFFICIAL_HOST,
    OpenAIActor,
    _read,
    _without_added_nulls,
    negotiated_mode,
    plan,
)

ENDPOINT = "/v1/chat/completions"
KEY_FIELD = "turing_key"  # the metadata entry holding the idempotency key
FIND_LIMIT = 500  # batches looked through (newest first) to find one by its key
_ENDED = {
    "completed": "completed",
    "expired": "expired",
    "cancelled": "cancelled",
    "failed": "failed",
}


class OpenAIBatches:
    provider = "openai"

    def __init__(self, actor: OpenAIActor) -> None:
        self.actor = actor
        self.settings = actor.settings

    def _mode(self) -> str:
        configured = self.settings.structured
        if configured != "auto":
            return configured
        return negotiated_mode(self.settings.url, self.settings.model) or "json_schema"

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The `/v1/chat/completions` body of one request, as the synchronous call sends it."""
        params = CallParams.of(self.settings, request)
        structured = plan(self._mode(), request)
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [m.as_dict() for m in structured.messages],
            "temperature": params.temperature,
        }
        if structured.response_format is not None:
            body["response_format"] = structured.response_format
        if params.seed is not None:
            body["seed"] = params.seed
        if params.max_tokens is not None:
            official = host_of(self.settings.url) == OFFICIAL_HOST
            body["max_completion_tokens" if official else "max_tokens"] = params.max_tokens
        return body | dict(self.settings.options) | dict(self.settings.extra_body)

    async def _client(self) -> Any:
        return await self.actor._clients.get()

    async def create(
        self, requests: Sequence[BatchRequest], key: str, window: str
    ) -> ProviderBatch:
        lines = "\n".join(
            json.dumps(
                {
                    "custom_id": r.custom_id,
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": self.body(r.request),
                },
                ensure_ascii=False,
            )
            for r in requests
        )
        client = await self._client()
        try:
            upload = await client.files.create(
                file=("turing-batch.jsonl", lines.encode("utf-8"), "application/jsonl"),
                purpose="batch",
            )
            batch = await client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window=window,
                metadata={KEY_FIELD: key},
            )
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return self._status(batch)

    async def find(self, key: str) -> ProviderBatch | None:
        client = await self._client()
        seen = 0
        try:
            async for batch in client.batches.list(limit=100):
                if (batch.metadata or {}).get(KEY_FIELD) == key:
                    return self._status(batch)
                seen += 1
                if seen >= FIND_LIMIT:
                    break
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return None

    async def retrieve(self, batch_id: str) -> ProviderBatch:
        try:
            batch = await (await self._client()).batches.retrieve(batch_id)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return self._status(batch)

    async def cancel(self, batch_id: str) -> ProviderBatch:
        try:
            batch = await (await self._client()).batches.cancel(batch_id)
        except Exception as exc:
            raise self.actor._error(exc, 60.0) from None
        return self._status(batch)

    async def results(self, batch: ProviderBatch) -> dict[str, Result]:
        raw = batch.raw or {}
        out: dict[str, Result] = {}
        for file_id in (raw.get("output_file_id"), raw.get("error_file_id")):
            if not file_id:
                continue
            try:
                content = await (await self._client()).files.content(file_id)
            except Exception as exc:
                raise self.actor._error(exc, 60.0) from None
            for line in content.text.splitlines():
                if line.strip():
                    entry = json.loads(line)
                    out[str(entry.get("custom_id"))] = self._result(entry)
        return out

    def _result(self, entry: Mapping[str, Any]) -> Result:
        response = entry.get("response") or {}
        error = entry.get("error")
        status = int(response.get("status_code") or 0)
        if error or status != 200:
            body = response.get("body") or {}
            detail = error or body.get("error") or {}
            code = str(detail.get("code") or "")
            message = str(detail.get("message") or f"HTTP {status}")
            if code == "batch_expired":
                return Failure("expired", message)
            if code == "batch_cancelled":
                return Failure("cancelled", message)
            transient = status in {0, 429} or status >= 500
            return Failure("errored", f"{code or status}: {message}", transient)
        completion = ChatCompletion.model_validate(response.get("body") or {})
        text, usage, model = self.actor._read(_read, completion)
        return Answer(
            text,
            usage.input_tokens,
            usage.output_tokens,
            model or self.settings.model,
            tidy=self._mode() == "json_schema",
        )

    @staticmethod
    def _status(batch: Any) -> ProviderBatch:
        counts = batch.request_counts
        failed = getattr(counts, "failed", 0) or 0
        done = getattr(counts, "completed", 0) or 0
        outcome = _ENDED.get(batch.status)
        return ProviderBatch(
            id=batch.id,
            status=batch.status,
            ended=outcome is not None,
            outcome=outcome,  # type: ignore[arg-type]
            succeeded=done,
            errored=failed,
            expires_at=float(batch.expires_at) if batch.expires_at else None,
            raw=batch.model_dump(mode="json"),
        )


def tidy(text: str, request: ModelRequest) -> str:
    """An answer through strict json_schema with the nulls strict mode forced for optional
    fields removed, as the synchronous call does (`Answer.tidy`)."""
    if not text or request.schema is None or not plan("json_schema", request).strict:
        return text
    return _without_added_nulls(text, request.schema)
