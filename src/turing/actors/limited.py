"""Shared limits around any actor, and the one way a call is made under them.

`ManagedActor` (provider actors) calls `under_limits` around each attempt; `LimitedActor`
puts any other actor under the same limits: the actors a workflow module offers in `ACTORS`
(a fake model, an offline extractor) used to ignore `[limits]` entirely (30 calls at once
under a concurrency limit of 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from turing.actors.base import (
    Actor,
    ModelRequest,
    ModelResponse,
    Remembers,
    Usage,
    estimate_tokens,
)

if TYPE_CHECKING:
    from turing.limits.spending import PeriodBudgets


def call_tokens(request: ModelRequest) -> tuple[int, int]:
    """The most a call may use before it is made: the prompt's tokens (estimated) and the
    answer's (`max_tokens`, else half the prompt, at least 256). Budgets and token-rate
    limits reserve this, and settle at what the call really used."""
    prompt = sum(estimate_tokens(m.content) for m in request.messages)
    return prompt, request.max_tokens or max(256, prompt // 2)


def reserve_tokens(request: ModelRequest) -> int:
    """Tokens to reserve against token-rate limits before the call (corrected after it)."""
    return sum(call_tokens(request))


async def under_limits(
    limiter: Any,
    keys: list[Any],
    request: ModelRequest,
    call: Callable[[], Awaitable[ModelResponse]],
) -> ModelResponse:
    """Acquire every key at once (waiting holds no slot), call, release with the tokens
    actually used (off the event loop: the limiter is a database)."""
    permit = await limiter.acquire(keys, tokens=reserve_tokens(request))
    used: int | None = None
    try:
        response = await call()
        used = response.usage.total_tokens
        return response
    finally:
        await asyncio.to_thread(limiter.release, permit, tokens_used=used)


class LimitedActor:
    """`inner` under the shared limits of its scopes: global, the request's workflow, and
    `actor:<name>` (the name steps use)."""

    def __init__(
        self,
        inner: Actor,
        name: str,
        limiter: Any,
        limits: Any,
        budgets: PeriodBudgets | None = None,
    ) -> None:
        self.inner = inner
        self.name = name
        self._limiter = limiter
        self._limits = limits
        self._budgets = budgets  # period budgets (turing.limits.spending.PeriodBudgets)

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self._budgets is None:
            return await self._limited(request)
        quoting = getattr(self.inner, "quote", None)
        if quoting is not None:
            quote = quoting(request)
        else:  # an actor that cannot price itself: its tokens at most, at no cost
            prompt, answer = call_tokens(request)
            quote = Usage(prompt, answer, 1)
        return await self._budgets.spend(
            workflow=request.workflow or None,
            actor=self.name,
            quote=quote,
            call=lambda: self._limited(request),
        )

    async def _limited(self, request: ModelRequest) -> ModelResponse:
        keys = (
            []
            if self._limiter is None
            else self._limits.keys_for(workflow=request.workflow or None, actor=self.name)
        )
        if not keys:
            return await self.inner.complete(request)
        return await under_limits(
            self._limiter, keys, request, lambda: self.inner.complete(request)
        )

    async def accepted(self, request: ModelRequest, response: ModelResponse) -> None:
        if isinstance(self.inner, Remembers):
            await self.inner.accepted(request, response)

    def __getattr__(self, name: str) -> Any:  # the inner actor's own attributes (settings…)
        return getattr(self.inner, name)
