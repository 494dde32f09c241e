"""Shared limits inside real runs, on both backends: two orchestrators (two workers) on one
database never have more calls in flight than `[limits.concurrency]` allows, and a rate
limit is honoured by the managed actor's calls. Nothing here depends on how fast the machine
is: windows are counted on the limiter's own grant times, not on when a call happened to
start."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from integration.domain import orchestrator, rows, tag_answer, tag_items
from turing import Executor, FakeModel, ModelRequest, ModelResponse, Orchestrator, Registry, Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.limits import Limiter, LimitsConfig, Permit, Wait
from turing.store import Store
from turing.store.store import open_store


class Gauge:
    """Calls in flight across every worker of the test. Until `fill` calls were in flight at
    once, a call waits for the others (at most 10 s), so a limit that allows `fill` is reached
    however slowly the workers run."""

    def __init__(self, fill: int = 1) -> None:
        self.now = 0
        self.peak = 0
        self.fill = fill
        self.starts: list[float] = []  # when each call started (wall clock: not for windows)
        self.lock = threading.Lock()

    async def answer(self, request: ModelRequest) -> ModelResponse:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.starts.append(time.time())
        for _ in range(1000):
            if self.peak >= self.fill:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        with self.lock:
            self.now -= 1
        return ModelResponse(tag_answer(request), Usage(10, 5, 1), "m")


class GaugedModel(FakeModel):
    def __init__(self, gauge: Gauge) -> None:
        super().__init__(name="gauged")
        self.gauge = gauge

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.gauge.answer(request)


def worker(
    store_url: str,
    gauge: Gauge,
    config: LimitsConfig,
    holder: str,
    granted: list[float] | None = None,
) -> Orchestrator:
    """An orchestrator whose managed actor shares `config`'s limits; each permit's grant time
    (the limiter's clock) goes to `granted`."""
    store = open_store(store_url)
    limiter = Limiter(store.db, holder=holder)
    if granted is not None:
        try_acquire = limiter.try_acquire

        def recording(*args: Any, **kwargs: Any) -> Permit | Wait:
            result = try_acquire(*args, **kwargs)
            if isinstance(result, Permit):
                granted.append(result.granted_at)
            return result

        limiter.try_acquire = recording  # type: ignore[method-assign]
    settings = ActorSettings("fake", "m", name="m", max_retries=0)
    actor = ManagedActor(GaugedModel(gauge), settings, limits=lambda: (limiter, config))
    return Orchestrator(
        Registry([tag_items()]), Executor({"m": actor}), store, concurrency=8, limiter=limiter
    )


def test_concurrency_limit_holds_across_two_workers(domain: Store) -> None:
    config = LimitsConfig(concurrency={"actor:m": 2})
    gauge = Gauge(fill=2)
    orchestrator(domain, tag_items()).discover_pending_tasks()
    workers = [worker(domain.db.url, gauge, config, f"w{i}") for i in range(2)]
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda w=w: reports.append(w.process_pending_tasks(discover=False)))
        for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for w in workers:
        w.close()
    assert sum(r.succeeded for r in reports) == 10
    assert gauge.peak == 2  # 16 tasks in flight, never more than 2 calls
    assert rows(domain, "SELECT COUNT(*) AS n FROM turing_limit_slots")[0]["n"] == 0


def test_rate_limit_spaces_the_calls(domain: Store) -> None:
    config = LimitsConfig(rate={"workflow:tag_items": "4/s"})
    granted: list[float] = []
    orch = worker(domain.db.url, Gauge(), config, "solo", granted)
    try:
        report = orch.process_pending_tasks()
    finally:
        orch.close()
    assert report.succeeded == 10
    assert len(granted) == 10  # one permit per call
    granted.sort()
    assert max(sum(1 for t in granted if s <= t < s + 1.0) for s in granted) <= 4
    assert granted[-1] - granted[0] >= 2.0  # 10 calls at 4/s need three windows
