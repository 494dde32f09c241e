"""Ollama through the official `ollama` client: `/api/chat` with the step's JSON Schema as
`format`, sampling in `options`, `keep_alive` from the actor's settings."""

from __future__ import annotations

import asyncio
import json
import os
import platform
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import ollama
import pydantic
from ollama._client import CONNECTION_ERROR_MESSAGE, _parse_host
from ollama._client import __version__ as OLLAMA_VERSION

from turing.actors.base import ModelRequest, ModelResponse, Usage
from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers import _errors
from turing.providers._common import CallParams, PerLoop, identity
from turing.providers._transport import KeepAliveTransport

# Headers of the last error response in this task, for Retry-After (the ollama client's
# ResponseError keeps only the status and the body).
# A host that does not accept a connection within this is unreachable (a connection
# failure for the circuit breaker), however long the call itself may take.
CONNECT_TIMEOUT_S = 10.0

_ERROR_HEADERS: ContextVar[dict[str, str] | None] = ContextVar("_ERROR_HEADERS", default=None)


async def _remember_error_headers(response: httpx.Response) -> None:
    box = _ERROR_HEADERS.get()
    if box is not None and response.status_code >= 400:
        box.clear()
        box.update(response.headers.items())


class OllamaActor:
    """A model served by Ollama; `settings` carries prices and limits for other layers."""

    def __init__(self, settings: ActorSettings) -> None:
        self.settings = settings
        self._clients: PerLoop[ollama.AsyncClient] = PerLoop(self._new_client, _close)
        self._transports: PerLoop[KeepAliveTransport] = PerLoop(
            KeepAliveTransport, KeepAliveTransport.aclose
        )
        # None: https, or TURING_OLLAMA_CLIENT=1 set: every call through the ollama client
        use_client = os.environ.get("TURING_OLLAMA_CLIENT", "") not in ("", "0")
        self._direct = None if use_client else _Target.of(settings.url)

    @property
    def identity(self) -> str:
        return identity(self.settings)

    def __repr__(self) -> str:
        return f"OllamaActor({self.identity!r})"

    def _secrets(self) -> tuple[str | None, ...]:
        return (self.settings.api_key(), os.environ.get("OLLAMA_API_KEY"))

    def _new_client(self) -> ollama.AsyncClient:
        key = self.settings.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else None
        return ollama.AsyncClient(
            host=self.settings.url,
            timeout=self.settings.timeout,
            headers=headers,
            event_hooks={"response": [_remember_error_headers]},
            # keeps a connection per call in flight, and costs O(1) per call where httpcore's
            # pool walks every connection twice per call (~1 ms CPU at 32 calls in flight)
            transport=KeepAliveTransport(),
        )

    def options(self, params: CallParams) -> dict[str, Any]:
        """Ollama `options`: the settings' extra options, then temperature, seed, sizes."""
        options: dict[str, Any] = {**self.settings.options, "temperature": params.temperature}
        if params.seed is not None:
            options["seed"] = params.seed
        num_ctx = self.settings.ollama_num_ctx  # else Ollama's default context cuts long prompts
        if num_ctx is not None:
            options["num_ctx"] = num_ctx
        if params.max_tokens is not None:
            options["num_predict"] = params.max_tokens
        return options

    async def complete(self, request: ModelRequest) -> ModelResponse:
        params = CallParams.of(self.settings, request)
        box: dict[str, str] = {}
        token = _ERROR_HEADERS.set(box)
        fmt: dict[str, Any] | Literal["json"] = (
            dict(request.schema) if request.schema is not None else "json"
        )
        try:
            async with asyncio.timeout(params.timeout):
                if self._direct is not None and not _proxied():
                    answer = await self._chat_direct(self._direct, request, params, fmt, box)
                    if answer is not None:
                        return answer
                response = await (await self._clients.get()).chat(
                    model=self.settings.model,
                    messages=[m.as_dict() for m in request.messages],
                    format=fmt,
                    options=self.options(params),
                    keep_alive=self.settings.keep_alive,
                    stream=False,
                )
        except Exception as exc:
            raise self._error(exc, params.timeout, box) from None
        finally:
            _ERROR_HEADERS.reset(token)
        usage = Usage(response.prompt_eval_count or 0, response.eval_count or 0, 1)
        text = response.message.content or ""
        return ModelResponse(text, usage, model=response.model or self.settings.model)

    async def _chat_direct(
        self,
        target: _Target,
        request: ModelRequest,
        params: CallParams,
        fmt: dict[str, Any] | str,
        box: dict[str, str],
    ) -> ModelResponse | None:
        """`/api/chat` as the ollama client sends it (same body, same headers), straight
        over the keep-alive transport: the client's request and response models and
        httpx's request machinery cost more CPU than the rest of a call. None for a
        redirect (the client follows it); errors are raised as the client raises them."""
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "stream": False,
            "options": self.options(params),
            "format": fmt,
            "messages": [m.as_dict() for m in request.messages],
            "tools": [],
        }
        if self.settings.keep_alive is not None:
            payload["keep_alive"] = self.settings.keep_alive
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = body.encode()
        key = self.settings.api_key() or os.environ.get("OLLAMA_API_KEY")
        head = target.head + (f"Authorization: Bearer {key}\r\n" if key else "")
        head += f"Content-Length: {len(data)}\r\n\r\n"
        timeout = params.timeout  # the call's one effective timeout (the actor's, else the step's)
        try:
            answer = await (await self._transports.get()).send(
                target.host,
                target.port,
                head.encode("latin-1") + data,
                connect=min(timeout, CONNECT_TIMEOUT_S),
                read=timeout,
                write=timeout,
            )
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if 300 <= answer.status < 400:
            return None
        if answer.status >= 400:
            box.clear()
            box.update((k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.headers)
            raise ollama.ResponseError(answer.body.decode(errors="replace"), answer.status)
        reply = json.loads(answer.body)
        message = reply.get("message") if isinstance(reply, dict) else None
        if isinstance(message, dict):
            text, model = message.get("content") or "", reply.get("model") or self.settings.model
            counts = reply.get("prompt_eval_count") or 0, reply.get("eval_count") or 0
            plain = isinstance(text, str) and isinstance(model, str)
            if plain and all(type(c) is int for c in counts):
                return ModelResponse(text, Usage(counts[0], counts[1], 1), model=model)
        # anything unusual: validated as the client does (the same errors, the same coercions)
        response = ollama.ChatResponse(**reply)
        usage = Usage(response.prompt_eval_count or 0, response.eval_count or 0, 1)
        text = response.message.content or ""
        return ModelResponse(text, usage, model=response.model or self.settings.model)

    def _error(self, exc: Exception, timeout: float, headers: dict[str, str]) -> ActorError:
        url, model, secrets = self.settings.url, self.settings.model, self._secrets()
        if isinstance(exc, ActorError):
            return exc
        if isinstance(exc, httpx.ConnectTimeout):  # the host never answered: a connection failure
            return _errors.connection_error(url, f"connect timeout ({_errors.describe(exc)})")
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return _errors.timeout_error(url, timeout)
        if isinstance(exc, ollama.ResponseError) and exc.status_code >= 400:
            return _errors.status_error(
                exc.status_code,
                message=_errors.describe(exc.error),
                url=url,
                not_found=f"model {model} not found on {url}: run `ollama pull {model}`",
                key_env=self.settings.api_key_env,
                secrets=secrets,
                headers=headers,
            )
        if isinstance(exc, ConnectionError | httpx.TransportError):
            detail = "is Ollama running? (start it with `ollama serve`)"
            if not isinstance(exc, ConnectionError):
                detail = f"{type(exc).__name__}: {_errors.describe(exc)}"
            return _errors.connection_error(url, detail, secrets)
        if isinstance(exc, ollama.RequestError):
            return ActorError(
                f"request rejected by the ollama client: {_errors.redact(exc.error, secrets)}",
                kind="bad_request",
            )
        if isinstance(exc, ollama.ResponseError | pydantic.ValidationError | json.JSONDecodeError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        return _errors.unknown_error(url, exc, secrets)

    async def aclose(self) -> None:
        """Close the running event loop's HTTP client now (it is closed with its loop anyway)."""
        await self._clients.aclose()


async def _close(client: ollama.AsyncClient) -> None:
    close: Callable[[], Awaitable[None]] = client.close  # untyped in the client
    await close()


_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _proxied() -> bool:
    """A proxy from the environment: httpx (the client's path) knows how to use it."""
    return any(os.environ.get(v) for v in _PROXY_VARIABLES)


@dataclass(frozen=True)
class _Target:
    """Where `/api/chat` is on a plain-HTTP Ollama, and the request's fixed headers."""

    host: str
    port: int
    head: str

    @classmethod
    def of(cls, url: str) -> _Target | None:
        base = urlsplit(_parse_host(url))
        if base.scheme != "http" or base.hostname is None:
            return None
        port = base.port or 80
        host = base.hostname if ":" not in base.hostname else f"[{base.hostname}]"
        netloc = host if port == 80 else f"{host}:{port}"
        head = (
            f"POST {base.path.rstrip('/')}/api/chat HTTP/1.1\r\nHost: {netloc}\r\n"
            "Accept: application/json\r\nContent-Type: application/json\r\n"
            f"User-Agent: {_USER_AGENT}\r\n"
        )
        return cls(base.hostname, port, head)


_USER_AGENT = (
    f"ollama-python/{OLLAMA_VERSION} "
    f"({platform.machine()} {platform.system().lower()}) Python/{platform.python_version()}"
)


def create(settings: ActorSettings) -> OllamaActor:
    return OllamaActor(settings)
