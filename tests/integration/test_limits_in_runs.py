"""Shared limits inside real runs, on both backends: two orchestrators (two workers) on one
database never have more calls in flight than `[limits.concurrency]` allows, and a rate
limit is honoured by the managed actor's calls."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from integration.domain import orchestrator, rows, tag_answer, tag_items
from turing import Executor, FakeModel, ModelRequest, ModelResponse, Orchestrator, Registry, Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.limits import Limiter, LimitsConfig
from turing.store import Store
from turing.store.store import open_store


class Gauge:
    """Calls in flight across every worker of the test, and when each call started."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.starts: list[float] = []
        self.lock = threading.Lock()

    async def answer(self, request: ModelRequest) -> ModelResponse:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.starts.append(time.time())
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


def worker(store_url: str, gauge: Gauge, config: LimitsConfig, holder: str) -> Orchestrator:
    store = open_store(store_url)
    limiter = Limiter(store.db, holder=holder)
    settings = ActorSettings("fake", "m", name="m", max_retries=0)
    actor = ManagedActor(GaugedModel(gauge), settings, limits=lambda: (limiter, config))
    return Orchestrator(
        Registry([tag_items()]), Executor({"m": actor}), store, concurrency=8, limiter=limiter
    )


def test_concurrency_limit_holds_across_two_workers(domain: Store) -> None:
    config = LimitsConfig(concurrency={"actor:m": 2})
    gauge = Gauge()
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
    gauge = Gauge()
    orch = worker(domain.db.url, gauge, config, "solo")
    try:
        report = orch.process_pending_tasks()
    finally:
        orch.close()
    assert report.succeeded == 10
    starts = sorted(gauge.starts)
    # seen from the client, a grant reaches the call a few ms late: allow 50 ms of that
    assert max(sum(1 for t in starts if s <= t < s + 0.95) for s in starts) <= 4
    assert starts[-1] - starts[0] >= 1.9  # 10 calls at 4/s need three windows
