"""The simulator's batch APIs: OpenAI's files and batches, Anthropic's message batches.

Each request of a batch is answered by the engine as a synchronous call is (same
responders, same faults, same determinism); a transport fault (500, 429, hang) becomes
that request's error (a partial failure). Time runs on the engine's clock (tests inject
one): a batch ends `batch_turnaround_s` after it was created; before that it is
in progress. With `batch_expire_fraction` set, batches expire at their turnaround with only
that fraction of their requests answered; a cancelled batch keeps the requests answered
by then (the share of the turnaround that passed) and cancels the rest.

OpenAI: POST /v1/files (multipart, purpose "batch"), GET /v1/files/{id}[/content],
POST /v1/batches, GET /v1/batches[/{id}], POST /v1/batches/{id}/cancel; statuses
validating -> in_progress -> completed | expired | cancelling -> cancelled (a batch whose
input file is unreadable: failed); output_file_id and error_file_id.
Anthropic: POST /v1/messages/batches, GET /v1/messages/batches[/{id}[/results]],
POST /v1/messages/batches/{id}/cancel; processing_status in_progress, canceling, ended;
results succeeded, errored, canceled, expired.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from turing.sim import protocols as wire
from turing.sim.engine import Call, Engine


class _Api(Protocol):
    """What batches take from the simulator's HTTP API (`sim.app`): its key check, its
    body parsing, and a chat completion body turned into a call, as a synchronous request."""

    def _unauthorized(self, request: Request) -> Response | None: ...

    async def _json_body(self, request: Request) -> dict[str, Any] | str: ...

    def openai_call(
        self, body: dict[str, Any], endpoint: str = "/v1/chat/completions"
    ) -> Call | Response: ...


WINDOW_S = 24 * 3600.0


@dataclass
class _Batch:
    id: str
    kind: str  # "openai" | "anthropic"
    created: float
    requests: list[tuple[str, dict[str, Any]]]  # (custom_id, body or params)
    input_file_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    cancel_at: float | None = None
    status: str = "in_progress"
    ended_at: float | None = None
    # custom_id -> ("ok", body) | ("error", status, body) | ("expired",) | ("cancelled",)
    results: dict[str, tuple[Any, ...]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    failed: str | None = None  # why the input could not be read


class Batches:
    """Files and batches of one simulator, in memory."""

    def __init__(self, engine: Engine, api: _Api) -> None:
        self.engine = engine
        self.api = api
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, _Batch] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.engine.clock() if self.engine.clock is not None else time.time()

    def _id(self, prefix: str) -> str:
        n = next(self._ids)
        return f"{prefix}{hashlib.sha256(f'{prefix}{n}'.encode()).hexdigest()[:20]}"

    # ------------------------------------------------------------------ progress
    def _answered(self, batch: _Batch, at: float) -> int:
        """How many requests (in order) are answered by `at`."""
        n = len(batch.requests)
        turnaround = self.engine.config.batch_turnaround_s
        if turnaround <= 0:
            return n
        return min(n, math.floor(n * max(0.0, at - batch.created) / turnaround))

    def advance(self, batch: _Batch) -> None:
        """Bring a batch to where the clock says it is; results are drawn once, at its end."""
        with self._lock:
            if batch.results is not None:
                return
            cfg = self.engine.config
            now = self.now()
            if batch.failed is not None:
                batch.status, batch.ended_at, batch.results = "failed", now, {}
                return
            if batch.cancel_at is not None:
                done, rest, status = (
                    self._answered(batch, batch.cancel_at),
                    "cancelled",
                    "cancelled",
                )
            elif now >= batch.created + cfg.batch_turnaround_s:
                if cfg.batch_expire_fraction is not None:
                    done = math.floor(len(batch.requests) * cfg.batch_expire_fraction)
                    rest, status = "expired", "expired"
                else:
                    done, rest, status = len(batch.requests), "", "completed"
            else:
                batch.status = "in_progress"
                return
            results: dict[str, tuple[Any, ...]] = {}
            for i, (custom_id, body) in enumerate(batch.requests):
                results[custom_id] = self._answer(batch, body) if i < done else (rest,)
            batch.results, batch.status, batch.ended_at = results, status, now
            if batch.kind == "openai":
                self._openai_files(batch)

    def _answer(self, batch: _Batch, body: dict[str, Any]) -> tuple[Any, ...]:
        call = (
            self.api.openai_call(body, "/v1/batches")
            if batch.kind == "openai"
            else _anthropic_call(body)
        )
        if isinstance(call, Response):  # the request itself is refused
            return ("error", call.status_code, json.loads(bytes(call.body)))
        engine = self.engine
        plan = engine.plan(call)
        try:
            if plan.error is not None or plan.fault in ("http_500", "hang"):
                return (
                    "error",
                    500,
                    _error_body(
                        "server_error", "The server had an error while processing your request."
                    ),
                )
            if plan.fault == "http_429":
                return ("error", 429, _error_body("rate_limit_exceeded", "Rate limit reached."))
            if batch.kind == "openai":
                return ("ok", wire.OpenAIShape().complete(plan))
            return ("ok", _anthropic_message(plan, body))
        finally:
            engine.finish(plan)

    # -------------------------------------------------------------------- openai
    def _openai_files(self, batch: _Batch) -> None:
        assert batch.results is not None
        out, err = [], []
        for n, (custom_id, result) in enumerate(batch.results.items()):
            line: dict[str, Any] = {"id": f"batch_req_{batch.id}_{n}", "custom_id": custom_id}
            if result[0] == "ok":
                line |= {
                    "response": {"status_code": 200, "request_id": f"req_{n}", "body": result[1]},
                    "error": None,
                }
                out.append(line)
            elif result[0] == "error":
                line |= {
                    "response": {
                        "status_code": result[1],
                        "request_id": f"req_{n}",
                        "body": result[2],
                    },
                    "error": None,
                }
                err.append(line)
            else:
                code = "batch_expired" if result[0] == "expired" else "batch_cancelled"
                text = (
                    "This request could not be executed before the completion window expired."
                    if result[0] == "expired"
                    else "The batch was cancelled."
                )
                line |= {"response": None, "error": {"code": code, "message": text}}
                err.append(line)
        if out:
            batch.output_file_id = self._file(out, "batch_output")
        if err:
            batch.error_file_id = self._file(err, "batch_output")

    def _file(self, lines: list[dict[str, Any]], purpose: str, name: str = "out.jsonl") -> str:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        file_id = self._id("file-")
        self.files[file_id] = (self._file_card(file_id, name, purpose, len(data)), data)
        return file_id

    def _file_card(self, file_id: str, name: str, purpose: str, size: int) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(self.now()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    def _openai_card(self, batch: _Batch) -> dict[str, Any]:
        assert batch.kind == "openai"
        status = batch.status
        if batch.cancel_at is not None and batch.results is None:
            status = "cancelling"
        counts = {"total": len(batch.requests), "completed": 0, "failed": 0}
        for result in (batch.results or {}).values():
            counts["completed" if result[0] == "ok" else "failed"] += 1
        at = int(batch.ended_at) if batch.ended_at is not None else None
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": {
                "object": "list",
                "data": [{"code": "invalid_input", "message": batch.failed}],
            }
            if batch.failed
            else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "in_progress_at": int(batch.created),
            "expires_at": int(batch.created + WINDOW_S),
            "finalizing_at": at,
            "completed_at": at if status == "completed" else None,
            "failed_at": at if status == "failed" else None,
            "expired_at": at if status == "expired" else None,
            "cancelling_at": int(batch.cancel_at) if batch.cancel_at is not None else None,
            "cancelled_at": at if status == "cancelled" else None,
            "request_counts": counts,
            "metadata": batch.metadata or None,
        }

    async def upload(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        form = await request.form()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or isinstance(upload, str):
            return wire.OpenAIShape.error(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in ("batch", "fine-tune", "assistants", "user_data"):
            return wire.OpenAIShape.error(
                400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose"
            )
        data = await upload.read()
        file_id = self._id("file-")
        card = self._file_card(file_id, upload.filename or "upload.jsonl", str(purpose), len(data))
        self.files[file_id] = (card, data)
        return JSONResponse(card)

    def _known_file(self, request: Request) -> tuple[dict[str, Any], bytes] | Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.files:
            return wire.OpenAIShape.error(404, f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    async def file(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        found = self._known_file(request)
        return found if isinstance(found, Response) else JSONResponse(found[0])

    async def content(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        found = self._known_file(request)
        if isinstance(found, Response):
            return found
        return Response(found[1], media_type="application/octet-stream")

    async def openai_create(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        body = await self.api._json_body(request)
        if isinstance(body, str):
            return wire.OpenAIShape.error(400, body)
        file_id = body.get("input_file_id")
        if body.get("endpoint") != "/v1/chat/completions":
            return wire.OpenAIShape.error(
                400, "Only /v1/chat/completions is simulated.", param="endpoint"
            )
        if body.get("completion_window") != "24h":
            return wire.OpenAIShape.error(
                400, "Invalid 'completion_window': only '24h'.", param="completion_window"
            )
        if file_id not in self.files:
            return wire.OpenAIShape.error(
                400, f"No such File object: {file_id}", param="input_file_id"
            )
        batch = _Batch(
            self._id("batch_"),
            "openai",
            self.now(),
            [],
            input_file_id=file_id,
            metadata=dict(body.get("metadata") or {}),
        )
        try:
            for line in self.files[file_id][1].decode().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    batch.requests.append((str(entry["custom_id"]), dict(entry["body"])))
        except (ValueError, KeyError, TypeError) as exc:
            batch.failed = f"the input file is not valid batch JSONL: {exc}"
        self.batches[batch.id] = batch
        card = self._openai_card(batch)
        card["status"] = "validating" if batch.failed is None else "failed"
        return JSONResponse(card)

    def _known(self, request: Request, kind: str) -> _Batch | Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None or batch.kind != kind:
            if kind == "openai":
                return wire.OpenAIShape.error(404, "No batch found with that id.")
            return _anthropic_error(404, "not_found_error", "No batch found with that id.")
        self.advance(batch)
        return batch

    async def openai_get(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        batch = self._known(request, "openai")
        return batch if isinstance(batch, Response) else JSONResponse(self._openai_card(batch))

    async def openai_cancel(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        batch = self._known(request, "openai")
        if isinstance(batch, Response):
            return batch
        if batch.results is None and batch.cancel_at is None:
            batch.cancel_at = self.now()
        return JSONResponse(self._openai_card(batch))

    async def openai_list(self, request: Request) -> Response:
        denied = self.api._unauthorized(request)
        if denied is not None:
            return denied
        rows = [b for b in self.batches.values() if b.kind == "openai"][::-1]
        for b in rows:
            self.advance(b)
        after = request.query_params.get("after")
        if after:
            ids = [b.id for b in rows]
            rows = rows[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", "20"))
        page = rows[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": [self._openai_card(b) for b in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(rows) > limit,
            }
        )

    # ----------------------------------------------------------------- anthropic
    def _anthropic_card(self, batch: _Batch, base: str) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.results is None:
            counts["processing"] = len(batch.requests)
        for result in (batch.results or {}).values():
            key = {"ok": "succeeded", "error": "errored", "cancelled": "canceled"}
            counts[key.get(result[0], result[0])] += 1
        ended = batch.results is not None
        status = (
            "ended" if ended else ("canceling" if batch.cancel_at is not None else "in_progress")
        )
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + WINDOW_S),
            "ended_at": _iso(batch.ended_at) if batch.ended_at is not None else None,
            "cancel_initiated_at": _iso(batch.cancel_at) if batch.cancel_at is not None else None,
            "archived_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def anthropic_create(self, request: Request) -> Response:
        body = await self.api._json_body(request)
        if isinstance(body, str):
            return _anthropic_error(400, "invalid_request_error", body)
        entries = body.get("requests")
        if not isinstance(entries, list) or not entries:
            return _anthropic_error(400, "invalid_request_error", "requests: a non-empty list")
        batch = _Batch(self._id("msgbatch_"), "anthropic", self.now(), [])
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
                return _anthropic_error(
                    400, "invalid_request_error", "each request needs custom_id and params"
                )
            batch.requests.append((str(entry.get("custom_id")), entry["params"]))
        self.batches[batch.id] = batch
        return JSONResponse(self._anthropic_card(batch, self._base(request)))

    async def anthropic_get(self, request: Request) -> Response:
        batch = self._known(request, "anthropic")
        if isinstance(batch, Response):
            return batch
        return JSONResponse(self._anthropic_card(batch, self._base(request)))

    async def anthropic_cancel(self, request: Request) -> Response:
        batch = self._known(request, "anthropic")
        if isinstance(batch, Response):
            return batch
        if batch.results is None and batch.cancel_at is None:
            batch.cancel_at = self.now()
        return JSONResponse(self._anthropic_card(batch, self._base(request)))

    async def anthropic_list(self, request: Request) -> Response:
        rows = [b for b in self.batches.values() if b.kind == "anthropic"][::-1]
        cards = [self._anthropic_card(b, self._base(request)) for b in rows]
        return JSONResponse(
            {
                "data": cards,
                "has_more": False,
                "first_id": cards[0]["id"] if cards else None,
                "last_id": cards[-1]["id"] if cards else None,
            }
        )

    async def anthropic_results(self, request: Request) -> Response:
        batch = self._known(request, "anthropic")
        if isinstance(batch, Response):
            return batch
        if batch.results is None:
            return _anthropic_error(400, "invalid_request_error", "the batch has not ended")
        lines = []
        for custom_id, result in batch.results.items():
            if result[0] == "ok":
                outcome: dict[str, Any] = {"type": "succeeded", "message": result[1]}
            elif result[0] == "error":
                kind = "rate_limit_error" if result[1] == 429 else "api_error"
                message = result[2].get("error", {}).get("message", "error")
                outcome = {
                    "type": "errored",
                    "error": {"type": "error", "error": {"type": kind, "message": message}},
                }
            else:
                outcome = {"type": "canceled" if result[0] == "cancelled" else "expired"}
            lines.append(json.dumps({"custom_id": custom_id, "result": outcome}))
        return Response("\n".join(lines) + "\n", media_type="application/binary")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": code}}


def _anthropic_error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


def _anthropic_call(params: dict[str, Any]) -> Call | Response:
    model, raw = params.get("model"), params.get("messages")
    if not isinstance(model, str) or not isinstance(raw, list) or not raw:
        return _anthropic_error(400, "invalid_request_error", "model and messages are required")
    messages = (
        [{"role": "system", "content": _text_of(params["system"])}] if params.get("system") else []
    )
    messages += [
        {"role": m.get("role", "user"), "content": _text_of(m.get("content"))}
        for m in raw
        if isinstance(m, dict)
    ]
    tools = params.get("tools") or []
    schema = tools[0].get("input_schema") if tools and isinstance(tools[0], dict) else None
    limit = params.get("max_tokens")
    return Call(
        protocol="anthropic",
        endpoint="/v1/messages/batches",
        model=model,
        messages=messages,
        schema=schema,
        json_mode=schema is None,
        max_tokens=limit if isinstance(limit, int) and limit >= 0 else None,
    )


def _anthropic_message(plan: Any, params: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Message for a plan: the answer as the forced tool's input when it is a
    JSON object, else as text (a malformed answer, as a model may give)."""
    tools = params.get("tools") or []
    content: list[dict[str, Any]] = [{"type": "text", "text": plan.content}]
    stop = "end_turn"
    if tools:
        try:
            value = json.loads(plan.content)
        except ValueError:
            value = None
        if isinstance(value, dict):
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_" + plan.key[:20],
                    "name": tools[0].get("name", "output"),
                    "input": value,
                }
            ]
            stop = "tool_use"
    return {
        "id": "msg_" + plan.key[:24],
        "type": "message",
        "role": "assistant",
        "model": plan.call.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": plan.prompt_tokens, "output_tokens": plan.completion_tokens},
    }
