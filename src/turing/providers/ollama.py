"""Ollama: `/api/chat` with the step's JSON Schema as `format`, sampling and the actor's
`options` (num_ctx, top_k, ...) in `options`, `keep_alive` from the actor's settings.

Two paths, one request: on plain HTTP (no proxy in the environment) the body is posted with
`aiohttp` (a kept asyncio HTTP client, with a connection pool that costs little CPU per call;
httpx's pool walks every pooled connection twice per call, about 1 ms of CPU at 32 calls in
flight); https, a proxy from the environment, a redirect, or `TURING_OLLAMA_CLIENT=1` go
through the official `ollama` client. Both send the same body and headers and raise the same
errors (tests/providers/test_ollama_paths.py)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
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
        self._sessions: PerLoop[aiohttp.ClientSession] = PerLoop(_new_session, _close_session)
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
        """`/api/chat` as the ollama client sends it (same body, same headers), with aiohttp.
        None for a redirect (the client follows it); errors are raised as the client raises
        them."""
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
        key = self.settings.api_key() or os.environ.get("OLLAMA_API_KEY")
        headers = (
            target.headers if not key else {**target.headers, "Authorization": f"Bearer {key}"}
        )
        # the call's one effective timeout (the actor's, else the step's) bounds it all
        # (asyncio.timeout around this); a connection gets at most CONNECT_TIMEOUT_S to open
        timeout = _timeout(min(params.timeout, CONNECT_TIMEOUT_S))
        session = await self._sessions.get()
        url = self.settings.url
        try:
            async with session.post(
                target.url,
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                answer = _Answer(response.status, response.headers, await response.read())
        except aiohttp.ConnectionTimeoutError as exc:  # never answered: a connection failure
            raise _errors.connection_error(
                url, f"connect timeout ({_errors.describe(exc)})"
            ) from None
        except aiohttp.ClientConnectorError:  # refused, DNS: as the client says it
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        except aiohttp.ClientError as exc:  # reset, disconnected, a broken answer
            detail = f"{type(exc).__name__}: {_errors.describe(exc)}"
            raise _errors.connection_error(url, detail, self._secrets()) from None
        if 300 <= answer.status < 400:
            return None
        if answer.status >= 400:
            box.clear()
            box.update(answer.headers.items())
            raise ollama.ResponseError(answer.body.decode(errors="replace"), answer.status)
        reply: Any = json.loads(answer.body)
        message = reply.get("message") if isinstance(reply, dict) else None
        if isinstance(message, dict):
            text, model = message.get("content") or "", reply.get("model") or self.settings.model
            counts = reply.get("prompt_eval_count") or 0, reply.get("eval_count") or 0
            plain = isinstance(text, str) and isinstance(model, str)
            if plain and all(type(c) is int for c in counts):
                return ModelResponse(text, Usage(counts[0], counts[1], 1), model=model)
        # anything unusual: validated as the client does (the same errors, the same coercions)
        chat = ollama.ChatResponse(**reply)
        usage = Usage(chat.prompt_eval_count or 0, chat.eval_count or 0, 1)
        return ModelResponse(chat.message.content or "", usage, chat.model or self.settings.model)

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
        """Close the running event loop's HTTP clients now (they are closed with their loop
        anyway)."""
        await self._clients.aclose()
        await self._sessions.aclose()


async def _close(client: ollama.AsyncClient) -> None:
    close: Callable[[], Awaitable[None]] = client.close  # untyped in the client
    await close()


_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _proxied() -> bool:
    """A proxy from the environment: httpx (the client's path) knows how to use it."""
    return any(os.environ.get(v) for v in _PROXY_VARIABLES)


@dataclass(frozen=True)
class _Target:
    """Where `/api/chat` is on a plain-HTTP Ollama, and the headers the ollama client sends."""

    url: str
    headers: dict[str, str]

    @classmethod
    def of(cls, url: str) -> _Target | None:
        base = urlsplit(_parse_host(url))
        if base.scheme != "http" or base.hostname is None:
            return None
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        return cls(f"{base.geturl().rstrip('/')}/api/chat", headers)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _new_session() -> aiohttp.ClientSession:
    # a connection per call in flight (no pool limit: the managed actor and the host's
    # scheduler bound the calls), idle ones kept 5 s as httpx does; no cookies
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=5.0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("Accept-Encoding",),
        timeout=aiohttp.ClientTimeout(total=None),
    )


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


@functools.cache
def _timeout(connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect)


_USER_AGENT = (
    f"ollama-python/{OLLAMA_VERSION} "
    f"({platform.machine()} {platform.system().lower()}) Python/{platform.python_version()}"
)


def create(settings: ActorSettings) -> OllamaActor:
    return OllamaActor(settings)
