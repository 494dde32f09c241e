"""Small pieces every provider needs: effective call parameters, the API key's environment
variable, one client per event loop, and the instruction that carries a schema in text."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from turing.actors.base import Message, ModelRequest
from turing.actors.settings import ActorSettings

T = TypeVar("T")

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class CallParams:
    """What one call uses: the actor's settings win over the step's request where set."""

    temperature: float
    seed: int | None
    timeout: float
    max_tokens: int | None

    @classmethod
    def of(cls, settings: ActorSettings, request: ModelRequest) -> CallParams:
        def pick(configured: Any, asked: Any) -> Any:
            return configured if configured is not None else asked

        return cls(
            temperature=pick(settings.temperature, request.temperature),
            seed=pick(settings.seed, request.seed),
            timeout=pick(settings.timeout, request.timeout),
            max_tokens=pick(settings.max_tokens, request.max_tokens),
        )


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def is_local(url: str) -> bool:
    return host_of(url) in LOCAL_HOSTS


def key_env(settings: ActorSettings, default_env: str, official_host: str) -> str | None:
    """The variable holding the key: the configured one, else the provider's usual one, but
    only for the provider's own host (a key for api.openai.com never goes to another server)."""
    if settings.api_key_env:
        return settings.api_key_env
    return default_env if host_of(settings.url) == official_host else None


def identity(settings: ActorSettings) -> str:
    return f"{settings.provider}:{settings.model}@{settings.url}"


def schema_instruction(schema: Mapping[str, Any]) -> str:
    return (
        "Answer with a single JSON object that conforms to this JSON Schema "
        "(no prose, no code fences):\n" + json.dumps(schema, ensure_ascii=False)
    )


def with_system_text(messages: tuple[Message, ...], text: str) -> list[Message]:
    """`messages` with `text` appended to the leading system message (or one made for it)."""
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = Message("system", f"{out[0].content}\n\n{text}")
    else:
        out.insert(0, Message("system", text))
    return out


class PerLoop(Generic[T]):
    """One client per running event loop, closed when that loop shuts down.

    HTTP clients pool connections bound to the loop that opened them, and an actor outlives
    a loop (each `asyncio.run` makes a new one). So each loop gets its own client, and a
    started async generator holds it: `asyncio.run` finalises live async generators before
    it closes the loop, which closes the client there, in its own loop.
    """

    def __init__(self, factory: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._factory = factory
        self._close = close
        self._entries: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is not None:
            return entry[0]
        client = self._factory()
        keeper = self._keep(client)
        self._entries[loop] = (client, keeper)
        await keeper.__anext__()  # started, so the loop finalises it at shutdown
        return client

    async def _keep(self, client: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client now (a later call makes a new one)."""
        entry = self._entries.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()
