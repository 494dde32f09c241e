"""The two wire protocols' bodies: Ollama's and OpenAI's answers, chunks and errors, model
details, and OpenAI's strict structured-output rules. Used by `turing.sim.app`."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from turing.sim.engine import Plan, normalize_model

_CHUNK_CHARS = 16  # about four tokens per streamed chunk
EPOCH = 1704067200  # 2024-01-01, "created" of the listed models
MODIFIED_AT = "2024-01-01T00:00:00Z"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def pieces(text: str) -> list[str]:
    return [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)]


def is_zero(keep_alive: Any) -> bool:
    if isinstance(keep_alive, int | float) and not isinstance(keep_alive, bool):
        return keep_alive == 0
    if isinstance(keep_alive, str):
        return keep_alive.strip() in ("0", "0s", "0m", "0h")
    return False


def details(model: str) -> dict[str, Any]:
    base, _, tag = normalize_model(model).partition(":")
    family = base.rstrip("0123456789.") or base
    size = tag[:-1] if tag.lower().endswith("b") else ""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": f"{size.upper()}B" if size else "7B",
        "quantization_level": "Q4_K_M",
    }


def size_bytes(model: str) -> int:
    size = details(model)["parameter_size"][:-1]
    try:
        return int(float(size) * 0.6e9)
    except ValueError:
        return 4_000_000_000


def digest(model: str) -> str:
    return hashlib.sha256(normalize_model(model).encode()).hexdigest()


# -- protocol shapes -----------------------------------------------------------------------


class OllamaShape:
    media_type = "application/x-ndjson"

    def __init__(self, endpoint: str) -> None:
        self.chat = endpoint == "/api/chat"

    @staticmethod
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def server_error(self) -> Response:
        return self.error(500, "llama runner process has terminated: exit status 2")

    def rate_limited(self, retry_after: dict[str, str]) -> Response:
        return self.error(
            429, "server busy, please try again.  maximum pending requests exceeded", retry_after
        )

    def _base(self, plan: Plan, text: str) -> dict[str, Any]:
        out: dict[str, Any] = {"model": plan.call.model, "created_at": _now_iso()}
        if self.chat:
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        return out

    def _final(self, plan: Plan, text: str) -> dict[str, Any]:
        out = self._base(plan, text)
        out.update(
            {
                "done": True,
                "done_reason": plan.done_reason,
                "total_duration": _ns(plan.load_s) + _ns(plan.ttft_s) + _ns(plan.gen_s),
                "load_duration": _ns(plan.load_s),
                "prompt_eval_count": plan.prompt_tokens,
                "prompt_eval_duration": _ns(plan.ttft_s),
                "eval_count": plan.completion_tokens,
                "eval_duration": _ns(plan.gen_s),
            }
        )
        if not self.chat:
            out["context"] = list(range(1, plan.prompt_tokens + plan.completion_tokens + 1))
        return out

    def complete(self, plan: Plan) -> dict[str, Any]:
        return self._final(plan, plan.content)

    def opening(self, plan: Plan) -> list[str]:
        return []

    def chunk(self, plan: Plan, piece: str) -> str:
        return json.dumps({**self._base(plan, piece), "done": False}, ensure_ascii=False) + "\n"

    def closing(self, plan: Plan) -> list[str]:
        return [json.dumps(self._final(plan, ""), ensure_ascii=False) + "\n"]


class OpenAIShape:
    media_type = "text/event-stream"

    def __init__(self, include_usage: bool = False) -> None:
        self.include_usage = include_usage
        self.created = int(time.time())

    @staticmethod
    def error(
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return JSONResponse(body, status_code=status, headers=headers)

    def server_error(self) -> Response:
        return self.error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            kind="server_error",
        )

    def rate_limited(self, retry_after: dict[str, str]) -> Response:
        return self.error(
            429,
            "Rate limit reached for requests. Please try again later.",
            kind="requests",
            code="rate_limit_exceeded",
            headers=retry_after,
        )

    @staticmethod
    def _id(plan: Plan) -> str:
        return "chatcmpl-" + hashlib.sha256(f"{plan.key}:{id(plan)}".encode()).hexdigest()[:24]

    @staticmethod
    def usage(plan: Plan) -> dict[str, int]:
        return {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": plan.completion_tokens,
            "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        }

    def complete(self, plan: Plan) -> dict[str, Any]:
        return {
            "id": self._id(plan),
            "object": "chat.completion",
            "created": self.created,
            "model": plan.call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": plan.content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": plan.done_reason,
                }
            ],
            "usage": self.usage(plan),
            "system_fingerprint": "fp_turing_sim",
        }

    def _chunk(self, plan: Plan, delta: dict[str, Any], finish: str | None) -> str:
        body: dict[str, Any] = {
            "id": self._id(plan),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": plan.call.model,
            "system_fingerprint": "fp_turing_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            body["usage"] = None
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def opening(self, plan: Plan) -> list[str]:
        return [self._chunk(plan, {"role": "assistant", "content": ""}, None)]

    def chunk(self, plan: Plan, piece: str) -> str:
        return self._chunk(plan, {"content": piece}, None)

    def closing(self, plan: Plan) -> list[str]:
        out = [self._chunk(plan, {}, plan.done_reason)]
        if self.include_usage:
            body = {
                "id": self._id(plan),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": plan.call.model,
                "system_fingerprint": "fp_turing_sim",
                "choices": [],
                "usage": self.usage(plan),
            }
            out.append(f"data: {json.dumps(body)}\n\n")
        out.append("data: [DONE]\n\n")
        return out


Shape = OllamaShape | OpenAIShape


# -- strict structured outputs (OpenAI's rules for response_format json_schema strict) ------


def strict_problem(schema: Any, root: dict[str, Any], context: tuple[str, ...] = ()) -> str | None:
    """The first way `schema` breaks OpenAI's strict-mode rules, worded like OpenAI does."""
    if not isinstance(schema, dict):
        return None
    where = (
        "context=(" + ", ".join(repr(c) for c in context) + ("," if len(context) == 1 else "") + ")"
    )
    if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#/"):
        return None  # checked where defined
    props = schema.get("properties")
    if isinstance(props, dict) or schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            return f"In {where}, 'additionalProperties' is required to be supplied and to be false."
        keys = list(props or {})
        required = schema.get("required") or []
        missing = [k for k in keys if k not in required]
        if missing:
            return (
                f"In {where}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        for key, sub in (props or {}).items():
            found = strict_problem(sub, root, (*context, "properties", key))
            if found:
                return found
    for keyword in ("items",):
        found = strict_problem(schema.get(keyword), root, (*context, keyword))
        if found:
            return found
    for keyword in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(keyword) or []):
            found = strict_problem(sub, root, (*context, keyword, str(i)))
            if found:
                return found
    if not context:
        for defs in ("$defs", "definitions"):
            for name, sub in (schema.get(defs) or {}).items():
                found = strict_problem(sub, root, (defs, name))
                if found:
                    return found
    return None
