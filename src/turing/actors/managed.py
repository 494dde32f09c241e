"""A provider actor, managed: settings applied, calls bounded, transient failures retried
with backoff (Retry-After honoured), each answer priced, deterministic requests cached.

Providers stay small translation layers; everything that is the same for every provider
lives here once. Each retry's reason (kind and a short message) is kept: in the error of a
call that gave up, and on the answer of one that got through (`RetriedResponse.retried`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from turing.actors.adaptive import AdaptiveLimit
from turing.actors.affinity import HostScheduler
from turing.actors.base import Actor, ModelRequest, ModelResponse, Usage, estimate_tokens
from turing.actors.breaker import CIRCUIT_OPEN, CircuitBreaker
from turing.actors.limited import call_tokens, under_limits
from turing.actors.settings import ActorSettings
from turing.cache import ResponseCache, cache_key, cacheable
from turing.errors import ActorError

if TYPE_CHECKING:
    from turing.limits.spending import PeriodBudgets

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 120.0

PROBE_POLL_S = 0.02  # how often a call waiting for a half-open circuit's probe looks again

log = logging.getLogger(__name__)


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
        breaker: CircuitBreaker | None = None,
        budgets: PeriodBudgets | None = None,
        adaptive: AdaptiveLimit | None = None,
    ) -> None:
        self.host = host  # model-affinity scheduling of the calls to this actor's host
        self.adaptive = adaptive  # the host's adaptive concurrency (`concurrency="adaptive"`)
        self.breaker = breaker  # the host's circuit: an unreachable host is not called
        self.budgets = budgets  # period budgets (turing.limits.spending.PeriodBudgets)
        self.inner = inner
        self.settings = settings
        self._cache = cache
        self._limits_of = limits
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._limits: dict[int, asyncio.Semaphore] = {}
        self._overflows = 0  # prompts over the context window that went out with a warning

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
        overflow = context_overflow(self.settings, request)
        if overflow is not None:
            if self.settings.on_overflow == "fail" and not self.settings.context_assumed:
                raise ActorError(overflow, kind="context")
            self._overflows += 1
            if self._overflows == 1 or self._overflows % 100 == 0:  # said, not every call
                log.warning("%s: %s (%d such prompt(s))", self.identity, overflow, self._overflows)
        cache = self._cache() if cacheable(request) and request.from_cache else None
        if cache is not None:
            key = cache_key(self.identity, self.settings.model, request)
            # the cache is a database: read it off the event loop (calls in flight go on)
            hit = await asyncio.to_thread(cache.get, key, count_hit=not request.dry_run)
            if hit is not None:
                return ModelResponse(hit["response"], Usage(calls=1, cached=1), self.settings.model)
        if self.budgets is not None:  # a cache hit spends nothing: reserve only for a call
            response, retries, retried = await self._budgeted(request)
        else:
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
        # why it retried, and what the provider noted (the structured mode it negotiated)
        notes = [_retried(retried)] if retried else []
        if isinstance(response, RetriedResponse) and response.retried:
            notes.append(response.retried)
        if notes:
            return RetriedResponse(response.text, usage, model, retried="; ".join(notes))
        return ModelResponse(response.text, usage, model)

    def quote(self, request: ModelRequest) -> Usage:
        """The most one call may spend, before it is made: the prompt's tokens (estimated),
        `max_tokens` for the answer (or an estimate), at this actor's prices."""
        prompt, answer = call_tokens(self._apply(request))
        return Usage(prompt, answer, 1, self.settings.cost(prompt, answer))

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

    async def _budgeted(self, request: ModelRequest) -> tuple[ModelResponse, int, list[str]]:
        """`_call` with its quote reserved in the period budgets and settled at its cost."""
        got: list[tuple[int, list[str]]] = []

        async def call() -> ModelResponse:
            response, retries, retried = await self._call(request)
            got.append((retries, retried))
            u = response.usage  # priced here: the budget settles at what it cost
            cost = self.settings.cost(u.input_tokens, u.output_tokens)
            return replace(response, usage=replace(u, cost=cost))

        assert self.budgets is not None
        response = await self.budgets.spend(
            workflow=request.workflow or None,
            actor=self.settings.name,
            quote=self.quote(request),
            call=call,
        )
        return (response, *got[0])

    async def _call(self, request: ModelRequest) -> tuple[ModelResponse, int, list[str]]:
        """The answer, how many transient failures were retried first, and why each was."""
        reasons: list[str] = []
        while True:
            try:
                return await self._once(request), len(reasons), reasons
            except ActorError as exc:
                retries = len(reasons)
                # an open circuit is not retried here: the task is deferred, not failed
                last = not exc.transient or exc.kind == CIRCUIT_OPEN
                if last or retries >= self.settings.max_retries:
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
        """One try, through the host's circuit breaker when there is one: refused at once
        while the circuit is open, counted as reaching the host or failing to connect."""
        if self.breaker is None:
            return await self._limited(request)
        while True:
            try:
                permit = self.breaker.enter()  # raises ActorError(kind="circuit_open")
                break
            except ActorError:
                if not self.breaker.probing:
                    raise
                await asyncio.sleep(PROBE_POLL_S)  # a probe is in flight: wait for its outcome
        try:
            response = await self._limited(request)
        except ActorError as exc:
            self.breaker.failed(permit, exc)
            raise
        except BaseException:  # cancelled, or our own database: nothing said about the host
            self.breaker.abandoned(permit)
            raise
        self.breaker.reached(permit)
        return response

    async def _limited(self, request: ModelRequest) -> ModelResponse:
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
            return await self._adapted(request)
        async with semaphore:
            return await self._adapted(request)

    async def _adapted(self, request: ModelRequest) -> ModelResponse:
        """Under the host's adaptive limit when there is one: each try's outcome (a 429,
        503 or timeout; or its latency) tells the limit how much the host takes."""
        if self.adaptive is None:
            return await self._on_host(request)
        async with self.adaptive.slot() as call:
            try:
                response = await self._on_host(request)
            except ActorError as exc:
                call.failed(exc)
                raise
            call.succeeded()
            return response

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


def context_overflow(settings: ActorSettings, request: ModelRequest) -> str | None:
    """Why this request would not fit the model's context window, or None.

    The prompt's tokens are estimated (4 characters a token, `estimate_tokens`) and the
    answer's room is `max_tokens` when set; their sum must fit the actor's context window
    (`context_tokens`, else Ollama's `num_ctx`). Without either, nothing is checked, except
    for Ollama, whose default context (`OLLAMA_DEFAULT_CONTEXT`) silently truncates a longer
    prompt: that is warned about (never failed: a Modelfile may set a larger one)."""
    limit = settings.context_limit
    prompt = sum(estimate_tokens(m.content) for m in request.messages)
    answer = request.max_tokens or 0
    if limit is None or prompt + answer <= limit:
        return None
    room = f" + {answer} for the answer (max_tokens)" if answer else ""
    where = (
        f"the context window of {settings.model} ({limit} tokens"
        + (", Ollama's default: set num_ctx or context_tokens" if settings.context_assumed else "")
        + ")"
    )
    return (
        f"prompt too long: about {prompt} tokens (estimated from {_chars(request)} characters)"
        f"{room} exceed {where}; shorten the input or raise context_tokens"
    )


def _chars(request: ModelRequest) -> int:
    return sum(len(m.content) for m in request.messages)
