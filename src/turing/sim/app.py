"""The HTTP face of the simulator: Ollama's and OpenAI's endpoints on one starlette app
(and both providers' batch APIs, `turing.sim.batches`).

Imported only when a simulator runs (starlette is the `turing[sim]` extra).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from turing.sim import protocols as wire
from turing.sim.batches import Batches
from turing.sim.engine import Call, Engine, Plan


class _Alive:
    """`await alive()` is False once the client has gone away."""

    def __init__(self, request: Request) -> None:
        self.request = request

    async def __call__(self) -> bool:
        return not await self.request.is_disconnected()


class _Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # shared ----------------------------------------------------------------------------

    async def _json_body(self, request: Request) -> dict[str, Any] | str:
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            self.engine.count_error("bad_request")
            return f"invalid JSON body: {exc}"
        if not isinstance(body, dict):
            self.engine.count_error("bad_request")
            return "the request body must be a JSON object"
        return body

    def _retry_after(self) -> dict[str, str]:
        seconds = max(0.0, self.engine.config.retry_after_s)
        return {
            "Retry-After": str(math.ceil(seconds)),
            "retry-after-ms": str(int(seconds * 1000)),
        }

    async def _serve(
        self, call: Call, request: Request, stream: bool, shape: wire.Shape
    ) -> Response:
        engine = self.engine
        plan = engine.plan(call)
        alive = _Alive(request)
        streaming = False
        try:
            if plan.error is not None:
                return (
                    shape.server_error()
                    if isinstance(shape, wire.OpenAIShape)
                    else wire.OllamaShape.error(500, plan.error)
                )
            if plan.fault == "http_500":
                return shape.server_error()
            if plan.fault == "http_429":
                return shape.rate_limited(self._retry_after())
            if plan.fault == "hang" and not await engine.pause(engine.config.hang_s, alive):
                return Response(status_code=499)  # nobody is listening any more
            if stream:
                streaming = True
                return StreamingResponse(self._stream(plan, shape), media_type=shape.media_type)
            await engine.load(plan)
            try:
                await engine.scaled(plan.ttft_s + plan.gen_s, alive)
            finally:
                engine.unload(plan)
            return JSONResponse(shape.complete(plan))
        finally:
            if not streaming:
                engine.finish(plan)

    async def _stream(self, plan: Plan, shape: wire.Shape) -> AsyncIterator[str]:
        engine = self.engine
        try:
            await engine.load(plan)
            try:
                for line in shape.opening(plan):
                    yield line
                if not await engine.scaled(plan.ttft_s):
                    return
                chunks = wire.pieces(plan.content)
                step = plan.gen_s / len(chunks) if chunks else 0.0
                for piece in chunks:
                    yield shape.chunk(plan, piece)
                    await engine.scaled(step)
                for line in shape.closing(plan):
                    yield line
            finally:
                engine.unload(plan)
        finally:
            engine.finish(plan)

    # ollama ----------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": "0.6.0"})

    async def tags(self, request: Request) -> Response:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": wire.MODIFIED_AT,
                "size": wire.size_bytes(m),
                "digest": wire.digest(m),
                "details": wire.details(m),
            }
            for m in self.engine.config.listed_models()
        ]
        return JSONResponse({"models": models})

    async def ps(self, request: Request) -> Response:
        models = [
            {
                "name": m,
                "model": m,
                "size": wire.size_bytes(m),
                "digest": wire.digest(m),
                "details": wire.details(m),
                "expires_at": "2318-01-01T00:00:00Z",
                "size_vram": wire.size_bytes(m),
            }
            for m in self.engine.residency.resident()
        ]
        return JSONResponse({"models": models})

    def _ollama_unknown(self, model: str) -> Response:
        self.engine.count_error("model_not_found")
        return wire.OllamaShape.error(404, f'model "{model}" not found, try pulling it first')

    async def show(self, request: Request) -> Response:
        body = await self._json_body(request)
        if isinstance(body, str):
            return wire.OllamaShape.error(400, body)
        model = body.get("model") or body.get("name")
        if not isinstance(model, str) or not model:
            return wire.OllamaShape.error(400, "model is required")
        if not self.engine.knows(model):
            return self._ollama_unknown(model)
        info = wire.details(model)
        return JSONResponse(
            {
                "modelfile": f"# Modelfile generated by the Turing simulator\nFROM {model}\n",
                "parameters": "temperature 0.7\nnum_ctx 4096",
                "template": "{{ .System }}\n{{ .Prompt }}",
                "details": info,
                "model_info": {
                    "general.architecture": info["family"],
                    "general.parameter_count": wire.size_bytes(model) * 10 // 6,
                    f"{info['family']}.context_length": 32768,
                },
                "capabilities": ["completion"],
                "modified_at": wire.MODIFIED_AT,
            }
        )

    async def ollama_chat(self, request: Request) -> Response:
        return await self._ollama(request, "/api/chat")

    async def ollama_generate(self, request: Request) -> Response:
        return await self._ollama(request, "/api/generate")

    async def _ollama(self, request: Request, endpoint: str) -> Response:
        body = await self._json_body(request)
        if isinstance(body, str):
            return wire.OllamaShape.error(400, body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.engine.count_error("bad_request")
            return wire.OllamaShape.error(400, "model is required")
        if not self.engine.knows(model):
            return self._ollama_unknown(model)
        fmt = body.get("format")
        schema: dict[str, Any] | None = None
        json_mode = False
        if isinstance(fmt, dict):
            schema = fmt
        elif fmt == "json":
            json_mode = True
        elif fmt not in (None, ""):
            self.engine.count_error("bad_request")
            return wire.OllamaShape.error(
                400, 'invalid format: expected "json" or a valid JSON schema'
            )
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return wire.OllamaShape.error(400, "options must be an object")
        if endpoint == "/api/chat":
            messages = body.get("messages") or []
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                self.engine.count_error("bad_request")
                return wire.OllamaShape.error(400, "messages must be a list of objects")
        else:
            prompt = body.get("prompt") or ""
            messages = []
            if body.get("system"):
                messages.append({"role": "system", "content": str(body["system"])})
            if prompt:
                messages.append({"role": "user", "content": str(prompt)})
        unload = wire.is_zero(body.get("keep_alive"))
        shape = wire.OllamaShape(endpoint)
        if not messages:
            return await self._ollama_load_only(model, unload, shape)
        num_predict = options.get("num_predict")
        seed = options.get("seed")
        call = Call(
            protocol="ollama",
            endpoint=endpoint,
            model=model,
            messages=messages,
            schema=schema,
            json_mode=json_mode,
            seed=seed if isinstance(seed, int) else None,
            max_tokens=num_predict if isinstance(num_predict, int) and num_predict >= 0 else None,
            unload_after=unload,
        )
        return await self._serve(call, request, bool(body.get("stream", True)), shape)

    async def _ollama_load_only(
        self, model: str, unload: bool, shape: wire.OllamaShape
    ) -> Response:
        """Empty messages/prompt: Ollama loads (or, with keep_alive 0, unloads) the model."""
        plan = Plan(Call("ollama", "load", model, [], unload_after=unload), key="", fault=None)
        if unload:
            self.engine.residency.release_idle(self.engine.canonical(model))
        else:
            await self.engine.load(plan)
            self.engine.unload(plan)
        plan.done_reason = "unload" if unload else "load"
        body = shape._base(plan, "")
        body.update({"done": True, "done_reason": plan.done_reason})
        return JSONResponse(body)

    # openai ----------------------------------------------------------------------------

    def _unauthorized(self, request: Request) -> Response | None:
        key = self.engine.config.api_key
        if not key:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given.strip() == key:
            return None
        self.engine.count_error("unauthorized")
        if not given.strip():
            return wire.OpenAIShape.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        shown = given.strip()
        masked = shown[:3] + "*" * 4 + shown[-4:] if len(shown) > 8 else "****"
        return wire.OpenAIShape.error(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def _openai_unknown(self, model: str) -> Response:
        self.engine.count_error("model_not_found")
        return wire.OpenAIShape.error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def _model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": wire.EPOCH, "owned_by": "library"}

    async def models(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        data = [self._model_card(m) for m in self.engine.config.listed_models()]
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        name = request.path_params["model"]
        if not self.engine.knows(name):
            return self._openai_unknown(name)
        return JSONResponse(self._model_card(name))

    async def chat_completions(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        body = await self._json_body(request)
        if isinstance(body, str):
            return wire.OpenAIShape.error(400, body)
        call = self.openai_call(body)
        if isinstance(call, Response):
            return call
        options = body.get("stream_options") or {}
        shape = wire.OpenAIShape(
            include_usage=bool(isinstance(options, dict) and options.get("include_usage"))
        )
        return await self._serve(call, request, bool(body.get("stream", False)), shape)

    def openai_call(
        self, body: dict[str, Any], endpoint: str = "/v1/chat/completions"
    ) -> Call | Response:
        """A chat completion body as a `Call`, or the error response a server gives it
        (synchronous calls and the lines of a batch alike)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.engine.count_error("bad_request")
            return wire.OpenAIShape.error(400, "you must provide a model parameter", param="model")
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) for m in messages)
        ):
            self.engine.count_error("bad_request")
            return wire.OpenAIShape.error(
                400, "Invalid 'messages': expected a non-empty array of objects.", param="messages"
            )
        if not self.engine.knows(model):
            return self._openai_unknown(model)
        fmt = body.get("response_format")
        refused = self._refused(fmt)
        if refused is not None:
            return refused
        schema, json_mode, problem = self._response_format(fmt, messages)
        if problem is not None:
            self.engine.count_error("bad_request")
            return wire.OpenAIShape.error(400, problem, param="response_format")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        seed = body.get("seed")
        return Call(
            protocol="openai",
            endpoint=endpoint,
            model=model,
            messages=messages,
            schema=schema,
            json_mode=json_mode,
            free_text=fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"),
            seed=seed if isinstance(seed, int) else None,
            max_tokens=limit if isinstance(limit, int) and limit >= 0 else None,
        )

    def _refused(self, fmt: Any) -> Response | None:
        """The answer of a server that does not take this response_format (None: taken)."""
        refused = self.engine.config.refuse_structured
        if not refused or not isinstance(fmt, dict):
            return None
        kind = fmt.get("type")
        mode = "json_object_schema" if kind == "json_object" and "schema" in fmt else kind
        if mode not in refused:
            return None
        self.engine.count_error("structured_refused")
        status = self.engine.config.refusal_status
        if status >= 500:  # llama-cpp-python: pydantic's validation error, sent as a 500
            taken = ["text"] + [k for k in ("json_object",) if k not in refused]
            expected = " or ".join(f"'{k}'" for k in taken)
            detail = {
                "type": "literal_error" if mode != "json_object_schema" else "extra_forbidden",
                "loc": ("body", "response_format", "type"),
                "msg": f"Input should be {expected}",
                "input": kind,
                "ctx": {"expected": expected},
            }
            return wire.OpenAIShape.error(status, repr([detail]), kind="internal_server_error")
        what = "json_object with a schema" if mode == "json_object_schema" else f"'{kind}'"
        return wire.OpenAIShape.error(
            status,
            f"Invalid parameter: 'response_format' of type {what} is not supported by this server.",
            param="response_format",
        )

    @staticmethod
    def _response_format(
        fmt: Any, messages: list[dict[str, Any]]
    ) -> tuple[dict[str, Any] | None, bool, str | None]:
        """(schema, json mode, the 400 message if the format is not acceptable)."""
        if fmt is None:
            return None, False, None
        if not isinstance(fmt, dict):
            return None, False, "Invalid type for 'response_format': expected an object."
        kind = fmt.get("type")
        if kind == "text":
            return None, False, None
        if kind == "json_object" and isinstance(fmt.get("schema"), dict):
            return fmt["schema"], False, None  # llama.cpp's: decoding held to the schema
        if kind == "json_object":
            text = json.dumps([m.get("content") for m in messages]).lower()
            if "json" not in text:
                return (
                    None,
                    True,
                    (
                        "'messages' must contain the word 'json' in some form, to use "
                        "'response_format' of type 'json_object'."
                    ),
                )
            return None, True, None
        if kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return (
                    None,
                    False,
                    "Missing required parameter: 'response_format.json_schema.name'.",
                )
            schema = spec.get("schema")
            if not isinstance(schema, dict):
                return (
                    None,
                    False,
                    ("Missing required parameter: 'response_format.json_schema.schema'."),
                )
            if spec.get("strict"):
                problem = wire.strict_problem(schema, schema)
                if problem is not None:
                    return (
                        None,
                        False,
                        (f"Invalid schema for response_format '{spec['name']}': {problem}"),
                    )
            return schema, False, None
        return (
            None,
            False,
            (
                f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', "
                "and 'text'."
            ),
        )

    # simulator ---------------------------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.engine.snapshot())

    async def reset(self, request: Request) -> Response:
        self.engine.reset()
        return JSONResponse(self.engine.snapshot())


def create_app(engine: Engine) -> Starlette:
    """The starlette application serving `engine` over both protocols."""
    api = _Api(engine)
    batches = Batches(engine, api)
    routes = [
        Route("/", api.root, methods=["GET", "HEAD"]),
        Route("/api/version", api.version, methods=["GET"]),
        Route("/api/tags", api.tags, methods=["GET"]),
        Route("/api/ps", api.ps, methods=["GET"]),
        Route("/api/show", api.show, methods=["POST"]),
        Route("/api/chat", api.ollama_chat, methods=["POST"]),
        Route("/api/generate", api.ollama_generate, methods=["POST"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model:path}", api.model, methods=["GET"]),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/files", batches.upload, methods=["POST"]),
        Route("/v1/files/{file_id}", batches.file, methods=["GET"]),
        Route("/v1/files/{file_id}/content", batches.content, methods=["GET"]),
        Route("/v1/batches", batches.openai_create, methods=["POST"]),
        Route("/v1/batches", batches.openai_list, methods=["GET"]),
        Route("/v1/batches/{batch_id}", batches.openai_get, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", batches.openai_cancel, methods=["POST"]),
        Route("/v1/messages/batches", batches.anthropic_create, methods=["POST"]),
        Route("/v1/messages/batches", batches.anthropic_list, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", batches.anthropic_get, methods=["GET"]),
        Route(
            "/v1/messages/batches/{batch_id}/results", batches.anthropic_results, methods=["GET"]
        ),
        Route("/v1/messages/batches/{batch_id}/cancel", batches.anthropic_cancel, methods=["POST"]),
        Route("/sim/stats", api.stats, methods=["GET"]),
        Route("/sim/reset", api.reset, methods=["POST"]),
    ]
    return Starlette(routes=routes)
