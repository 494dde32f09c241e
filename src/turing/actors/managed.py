"""A provider actor, managed: settings applied, calls bounded, transient failures retried
with backoff (Retry-After honoured), each answer priced, deterministic requests cached.

Providers stay small translation layers; everything that is the same for every provider
lives here once. Each retry's reason (kind and a short message) is kept: in the error of a
call that gave up, and on the answer of one that got through (`RetriedResponse.retried`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from turing.actors.affinity import HostScheduler
from turing.actors.base import Actor, ModelRequest, ModelResponse, Usage
from turing.actors.limited import under_limits
from turing.actors.settings import ActorSettings
from turing.cache import ResponseCache, cache_key, cacheable
from turing.errors import ActorError

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 120.0


def backoff(
    attempt: int, retry_after: float | None, rng: random.Random, base: float = 0.5
) -> float:
    """Exponential backoff with +-25% jitter, or the server's Retry-After when it sent one."""
    if retry_after is not None:
        return float(min(max(retry_after, 0.0), MAX_RETRY_AFTER_S))
    delay: float = min(base * 2.0**attempt, MAX_BACKOFF_S)
    return delay * rng.uniform(0.75, 1.25)


_REASON_CHARS = 120


@dataclass(frozen=True)
class RetriedResponse(ModelResponse):
    """An answer that came after transient failures; `retried` says why each retry was made
    ("retried 2 times: timeout: no answer after 20.0s ...; server: HTTP 500 ..."), and the
    executor records it on the call, so history tells a timeout from a 500 from a 429."""

    retried: str = ""


def _reason(exc: ActorError) -> str:
    """One retry's reason: the error's kind and a short message."""
    text = " ".join(str(exc).split())
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 1] + "…"
    return f"{exc.kind}: {text}"


def _retried(reasons: list[str]) -> str:
    """`retried N times: reason; reason (2 times)`: consecutive repeats counted once."""
    runs: list[tuple[str, int]] = []
    for reason in reasons:
        if runs and runs[-1][0] == reason:
            runs[-1] = (reason, runs[-1][1] + 1)
        else:
            runs.append((reason, 1))
    parts = [f"{r} ({n} times)" if n > 1 else r for r, n in runs]
    n = len(reasons)
    return f"retried {n} time{'' if n == 1 else 's'}: " + "; ".join(parts)


SharedLimits = tuple[Any, Any]  # (turing.limits.Limiter, turing.limits.LimitsConfig)


class ManagedActor:
    """Wraps one provider actor with its `ActorSettings`. Manages its own per-call timeout."""

    handles_timeout = True

    def __init__(
        self,
        inner: Actor,
        settings: ActorSettings,
        *,
        cache: Callable[[], ResponseCache | None] = lambda: None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        seed: int | None = None,
        limits: Callable[[], SharedLimits | None] = lambda: None,
        host: HostScheduler | None = None,
    ) -> None:
        self.host = host  # model-affinity scheduling of the calls to this actor's host
        self.inner = inner
        self.settings = settings
        self._cache = cache
        self._limits_of = limits
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._limits: dict[int, asyncio.Semaphore] = {}

    @property
    def identity(self) -> str:
        return self.inner.identity

    def _semaphore(self) -> asyncio.Semaphore | None:
        """One semaphore per event loop (each `asyncio.run` has its own loop)."""
        if not self.settings.max_concurrency:
            return None
        loop = id(asyncio.get_running_loop())
        if loop not in self._limits:
            self._limits = {loop: asyncio.Semaphore(self.settings.max_concurrency)}
        return self._limits[loop]

    def _apply(self, request: ModelRequest) -> ModelRequest:
        s = self.settings
        return replace(
            request,
            temperature=s.temperature if s.temperature is not None else request.temperature,
            seed=s.seed if s.seed is not None else request.seed,
            timeout=s.timeout if s.timeout is not None else request.timeout,
            max_tokens=s.max_tokens if s.max_tokens is not None else request.max_tokens,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        request = self._apply(request)
        cache = self._cache() if cacheable(request) and request.from_cache else None
        if cache is not None:
            key = cache_key(self.identity, self.settings.model, request)
            # the cache is a database: read it off the event loop (calls in flight go on)
            hit = await asyncio.to_thread(cache.get, key, count_hit=not request.dry_run)
            if hit is not None:
                return ModelResponse(hit["response"], Usage(calls=1, cached=1), self.settings.model)
        response, retries, retried = await self._call(request)
        u = response.usage
        usage = Usage(
            u.input_tokens,
            u.output_tokens,
            1,
            self.settings.cost(u.input_tokens, u.output_tokens),
            0,
            retries,
        )
        model = response.model or self.settings.model
        if retried:
            return RetriedResponse(response.text, usage, model, retried=_retried(retried))
        return ModelResponse(response.text, usage, model)

    async def accepted(self, request: ModelRequest, response: ModelResponse) -> None:
        """Keep an answer that validated (only those: a cached invalid answer would be
        replayed by every retry). First asks only; hits and dry runs are not stored again."""
        request = self._apply(request)
        cache = self._cache() if cacheable(request) and not request.dry_run else None
        if cache is None or response.usage.cached or not response.text.strip():
            return
        await asyncio.to_thread(
            cache.put,
            cache_key(self.identity, self.settings.model, request),
            actor=self.identity,
            model=self.settings.model,
            text=response.text,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        )

    async def _call(self, request: ModelRequest) -> tuple[ModelResponse, int, list[str]]:
        """The answer, how many transient failures were retried first, and why each was."""
        reasons: list[str] = []
        while True:
            try:
                return await self._once(request), len(reasons), reasons
            except ActorError as exc:
                retries = len(reasons)
                if not exc.transient or retries >= self.settings.max_retries:
                    if retries:
                        final = ActorError(
                            f"{exc} (after {retries} retr{'y' if retries == 1 else 'ies'}); "
                            + _retried(reasons),
                            transient=exc.transient,
                            retry_after=exc.retry_after,
                            kind=exc.kind,
                        )
                        final.retries = retries
                        raise final from exc
                    raise
                await self._sleep(backoff(retries, exc.retry_after, self._rng))
                reasons.append(_reason(exc))

    async def _once(self, request: ModelRequest) -> ModelResponse:
        shared = self._limits_of()
        if shared is None:
            return await self._bounded(request)
        limiter, config = shared
        keys = config.keys_for(
            workflow=request.workflow or None, actor=self.settings.name, provider=self.settings.url
        )
        if not keys:
            return await self._bounded(request)
        return await under_limits(limiter, keys, request, lambda: self._bounded(request))

    async def _bounded(self, request: ModelRequest) -> ModelResponse:
        semaphore = self._semaphore()
        if semaphore is None:
            return await self._on_host(request)
        async with semaphore:
            return await self._on_host(request)

    async def _on_host(self, request: ModelRequest) -> ModelResponse:
        """Wait for the host's turn (not counted in the timeout), then call."""
        if self.host is None:
            return await self._timed(request)
        async with self.host.slot(self.settings.model):
            return await self._timed(request)

    async def _timed(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(self.inner.complete(request), request.timeout)
        except TimeoutError:
            waited = time.perf_counter() - started
            raise ActorError(
                f"no answer after {waited:.1f}s (timeout {request.timeout:g}s)",
                transient=True,
                kind="timeout",
            ) from None
