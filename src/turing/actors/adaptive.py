"""Adaptive concurrency per provider host: find how many calls a host takes at once.

A fixed `max_concurrency` is either too low (the host could serve more) or too high (the
host answers 429, 503 or times out, and every retry costs a backoff). `AdaptiveLimit` finds
the number instead, per host (base URL), shared by every actor of one process that calls it
with `concurrency = "adaptive"`, and never goes above the configured ceiling
(`max_concurrency`) nor below 1:

- *Slow start*: until the first sign of overload, the limit grows by one per call that
  succeeded while the limit was in use (it doubles per round trip).
- *Additive increase*: afterwards by 1/limit per such call (one per round trip).
- *Multiplicative decrease*: a 429, 503 or timeout halves it (`backoff`).
- *Latency knee*: the mean latency of the last `window` calls compared with the least such
  mean seen in the last `baseline_s` seconds (means, not single calls: a model's latency
  follows its answer's length, and a mean over many calls is steady where one call is not);
  above `tolerance` times that, the host is queueing (more calls only wait longer), and the
  limit shrinks by `knee_backoff`.

One decrease per round trip: a signal from a call that started before the last decrease
says nothing about the new limit (it was sent under the old one) and is ignored. Calls only
count as "the limit in use" when at least half the limit was in flight, so an idle actor
does not inflate it. Time comes from `clock` (tests pass a fake one).

    limit = AdaptiveLimit(ceiling=32)
    async with limit.slot() as call:       # waits while `limit` calls are in flight
        try:
            response = await provider.complete(request)
        except ActorError as exc:
            call.failed(exc)                  # 429/503/timeout: overloaded; else neutral
            raise
        call.succeeded()                      # the latency is measured by the slot

Like the rest of the actor layer, one limit serves one event loop at a time (not
thread-safe); it may be reused by later loops.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from turing.actors.affinity import host_key

Clock = Callable[[], float]

DEFAULT_CEILING = 64  # when `concurrency = "adaptive"` comes without a max_concurrency
OVERLOAD_KINDS = frozenset({"rate_limit", "timeout"})  # with HTTP 503 (kind "server")


def is_overload(exc: BaseException) -> bool:
    """A sign that the host is over its capacity: 429, 503 or a timeout (a 500 or a
    refused connection is not: the circuit breaker and the retries deal with those)."""
    kind = getattr(exc, "kind", None)
    if kind in OVERLOAD_KINDS:
        return True
    return kind == "server" and " 503 " in f" {exc} "


class AdaptiveLimit:
    """The AIMD limit of one host (see the module docstring). `limit` is how many calls
    may be in flight now; `in_flight`, `decreases` and `peak` are for reports and tests."""

    def __init__(
        self,
        ceiling: int = DEFAULT_CEILING,
        *,
        initial: int = 1,
        backoff: float = 0.5,
        knee_backoff: float = 0.9,
        tolerance: float = 1.5,
        window: int = 20,
        baseline_s: float = 300.0,
        name: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        if ceiling < 1 or initial < 1:
            raise ValueError(f"ceiling and initial must be >= 1, got {ceiling}, {initial}")
        if not (0 < backoff < 1 and 0 < knee_backoff < 1 and tolerance > 1 and window >= 1):
            raise ValueError("0 < backoff, knee_backoff < 1, tolerance > 1 and window >= 1")
        self.name = name
        self.ceiling = ceiling
        self.backoff = backoff
        self.knee_backoff = knee_backoff
        self.tolerance = tolerance
        self.window = window
        self.baseline_s = baseline_s
        self.clock = clock
        self._limit = float(min(initial, ceiling))
        self._slow_start = True
        self._changed_at = -float("inf")  # when the limit last went down
        self._recent: deque[float] = deque(maxlen=window)
        # (bucket start, least window mean in it): the baseline is the least over the buckets
        self._mins: deque[tuple[float, float]] = deque()
        self.in_flight = 0
        self.peak = 0
        self.decreases = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return max(1, min(self.ceiling, int(self._limit)))

    @property
    def baseline(self) -> float | None:
        """The least mean latency of `window` calls seen within `baseline_s` (None until
        `window` calls answered)."""
        self._expire()
        return min(m for _, m in self._mins) if self._mins else None

    def raise_ceiling(self, ceiling: int) -> None:
        """Another actor on this host allows more: the larger ceiling holds."""
        self.ceiling = max(self.ceiling, ceiling)

    # -- signals -------------------------------------------------------------------------

    def succeeded(self, latency_s: float, started: float, in_flight: int) -> None:
        """A call that started at `started` answered after `latency_s`, with `in_flight`
        calls in flight (itself included) when it ended."""
        self._sample(latency_s)
        if started < self._changed_at:
            return  # sent under an earlier, larger limit
        base = self.baseline
        if base is not None and len(self._recent) == self.window:
            mean = sum(self._recent) / self.window
            if mean > base * self.tolerance:  # past the knee: the host queues our calls
                self._decrease(self.knee_backoff)
                return
        if in_flight * 2 < self._limit:
            return  # the limit was not in use: no evidence that more would be served
        grow = 1.0 if self._slow_start else 1.0 / max(self._limit, 1.0)
        self._limit = min(float(self.ceiling), self._limit + grow)

    def overloaded(self, started: float) -> None:
        """A call that started at `started` was answered 429/503 or timed out."""
        if started >= self._changed_at:
            self._decrease(self.backoff)

    def _decrease(self, factor: float) -> None:
        self._slow_start = False
        self._limit = max(1.0, self._limit * factor)
        self._changed_at = self.clock()
        self._recent.clear()
        self.decreases += 1

    def _sample(self, latency_s: float) -> None:
        self._recent.append(latency_s)
        if len(self._recent) < self.window:
            return
        mean = sum(self._recent) / self.window
        now = self.clock()
        bucket = self.baseline_s / 10 if self.baseline_s > 0 else float("inf")
        if self._mins and now - self._mins[-1][0] < bucket:
            start, least = self._mins[-1]
            self._mins[-1] = (start, min(least, mean))
        else:
            self._mins.append((now, mean))
        self._expire()

    def _expire(self) -> None:
        now = self.clock()
        while len(self._mins) > 1 and now - self._mins[0][0] > self.baseline_s:
            self._mins.popleft()

    # -- admission -----------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[_Call]:
        """Wait while `limit` calls are in flight, then hold a place until the block ends
        (also on errors and cancellation). Report the call's outcome on what it yields."""
        if self.in_flight >= self.limit or self._waiters:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except BaseException:
                if future in self._waiters:
                    self._waiters.remove(future)
                elif future.done() and not future.cancelled():
                    self._release()  # it was given a place it will not use: pass it on
                raise
        else:
            self._enter()
        call = _Call(self, self.clock())
        try:
            yield call
        finally:
            self._release()

    def _enter(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self._enter()  # counted before the waiter runs: no one overtakes it
                future.set_result(None)

    def describe(self) -> dict[str, Any]:
        return {
            "host": self.name,
            "limit": self.limit,
            "ceiling": self.ceiling,
            "in_flight": self.in_flight,
            "decreases": self.decreases,
            "baseline_s": self.baseline,
        }


class _Call:
    """One admitted call: report how it ended (once; a call not reported is neutral)."""

    def __init__(self, limit: AdaptiveLimit, started: float) -> None:
        self._limit = limit
        self.started = started
        self._done = False

    def succeeded(self) -> None:
        if not self._done:
            self._done = True
            limit = self._limit
            limit.succeeded(limit.clock() - self.started, self.started, limit.in_flight)

    def failed(self, exc: BaseException) -> None:
        if not self._done:
            self._done = True
            if is_overload(exc):
                self._limit.overloaded(self.started)


class AdaptiveLimits:
    """The adaptive limits of one process, one per host key, created on first use."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._by_key: dict[str, AdaptiveLimit] = {}

    def get(self, url: str, ceiling: int | None = None) -> AdaptiveLimit:
        """The limit of `url`'s host; a larger `ceiling` than its current one raises it."""
        key = host_key(url)
        limit = self._by_key.get(key)
        if limit is None:
            limit = self._by_key[key] = AdaptiveLimit(
                ceiling or DEFAULT_CEILING, name=key, clock=self.clock
            )
        else:
            limit.raise_ceiling(ceiling or DEFAULT_CEILING)
        return limit

    def __iter__(self) -> Any:
        return iter(self._by_key.values())
