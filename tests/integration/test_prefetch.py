"""Claim-ahead (prefetch): without batch limits the orchestrator claims more tasks than it
has free slots so a finished slot refills at once; with one, claims only fill free slots.
Nothing claimed may be lost or over-claimed: max_tasks is exact, a stop releases claimed
tasks that never started to pending (attempt not counted), and so does a drain that was
abandoned. Both backends."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from integration.domain import Calls, count_words, orchestrator, rows, tag_items
from turing import Executor, FakeModel, ModelRequest, ModelResponse, Orchestrator, Registry, Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.orchestrator import BatchLimits
from turing.store import Store


def states(store: Store) -> dict[str, int]:
    found = rows(store, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
    return {str(r["status"]): int(r["n"]) for r in found}


def pending_attempts(store: Store) -> set[int]:
    found = rows(store, "SELECT attempts FROM turing_tasks WHERE status = 'pending'")
    return {int(r["attempts"]) for r in found}


class CountingStore:
    """Records the size of every claim the orchestrator asks for, and the most tasks it held
    right after a claim: claimed and not finished yet (buffered or running).

    A task counts as finished when the executor returns it. Its row stays 'running' until the
    group commit that takes it lands, so the database's count of running rows can be higher
    (a slow commit leaves every task finished meanwhile in it); those are not held.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.asked: list[int] = []
        self.held = 0
        self._claimed = self._finished = 0
        self._lock = threading.Lock()  # claims run in a thread, tasks finish on the loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def claim(self, owner: str, limit: int, **kw: Any) -> Any:
        self.asked.append(limit)
        claimed = self.store.claim(owner, limit, **kw)
        with self._lock:
            self._claimed += len(claimed)
            self.held = max(self.held, self._claimed - self._finished)
        return claimed

    def watch(self, orch: Orchestrator) -> Orchestrator:
        """Count the tasks `orch` finishes (its executor returned them)."""
        run = orch.executor.run

        async def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return await run(*args, **kwargs)
            finally:
                with self._lock:
                    self._finished += 1

        orch.executor.run = counted  # type: ignore[method-assign]
        return orch


def test_claims_ahead_of_the_free_slots(domain: Store, calls: Calls) -> None:
    counting = CountingStore(domain)
    orch = orchestrator(counting, count_words(calls), concurrency=4)  # type: ignore[arg-type]
    counting.watch(orch)
    assert orch.processor.prefetch >= 2
    report = orch.process_pending_tasks()
    assert report.succeeded == 10
    assert counting.asked[0] == 4 + orch.processor.prefetch  # slots and buffer
    assert counting.held <= 4 + orch.processor.prefetch  # never more than slots and buffer
    assert states(domain) == {"succeeded": 10}


def test_max_tasks_is_exact_with_prefetch(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls), concurrency=4)
    for budget, done in ((3, 3), (1, 4), (5, 9)):
        report = orch.process_pending_tasks(max_tasks=budget)
        assert report.processed == budget
        assert states(domain) == {"succeeded": done, "pending": 10 - done}  # none left running
        assert pending_attempts(domain) == {0}  # nothing was claimed beyond the budget
    assert orch.process_pending_tasks().processed == 1
    assert len(calls.script) == 10


PRICED = ActorSettings("fake", "m", price_input=1000.0, price_output=2000.0, max_retries=0)


def priced(request: ModelRequest) -> ModelResponse:
    from integration.domain import tag_answer

    return ModelResponse(tag_answer(request), Usage(100, 50, 1), "m")  # 0.2 per call


def test_batch_limit_stop_releases_the_buffered_tasks(domain: Store) -> None:
    fake = FakeModel(priced)
    executor = Executor({"m": ManagedActor(fake, PRICED)})
    orch = Orchestrator(
        Registry([tag_items()]),
        executor,
        domain,
        concurrency=2,
        batch_limits=BatchLimits(cost=1.0),
    )
    report = orch.process_pending_tasks()
    # stopped by the limit at claim time or by a call's reservation (its task deferred)
    assert report.stopped is not None and "cost" in report.stopped
    assert report.succeeded == len(fake.requests) < 10 and report.total_cost() <= 1.0
    counts = states(domain)
    assert "running" not in counts  # buffered tasks went back, none is held
    assert counts == {"succeeded": report.succeeded, "pending": 10 - report.succeeded}
    assert pending_attempts(domain) == {0}
    again = Orchestrator(Registry([tag_items()]), executor, domain, concurrency=2)
    assert again.process_pending_tasks().processed == 10 - report.succeeded


def test_with_a_batch_limit_claims_only_fill_free_slots(domain: Store) -> None:
    """Nothing is claimed ahead: every claimed task starts at once, after the check."""
    counting = CountingStore(domain)
    executor = Executor({"m": ManagedActor(FakeModel(priced), PRICED)})
    orch = Orchestrator(
        Registry([tag_items()]),
        executor,
        counting,  # type: ignore[arg-type]
        concurrency=3,
        batch_limits=BatchLimits(cost=100.0),
    )
    counting.watch(orch)
    assert orch.process_pending_tasks().succeeded == 10
    assert counting.asked[0] == 3 and max(counting.asked) <= 3
    assert counting.held <= 3


def test_an_abandoned_drain_releases_what_it_had_not_started(domain: Store, calls: Calls) -> None:
    started = asyncio.Event()

    async def slow(data: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        return {"item_id": data["item_id"], "words": 0}

    orch = orchestrator(domain, count_words(calls, run=slow), concurrency=2, lease_s=600)

    async def scenario() -> None:
        run = asyncio.create_task(orch.aprocess())
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.2)  # the claim-ahead has returned by now
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run

    asyncio.run(scenario())
    counts = states(domain)
    # the two started tasks keep their lease (a worker releases them; else they expire);
    # the buffered ones are pending again, attempt not counted
    assert counts == {"running": 2, "pending": 8}
    assert pending_attempts(domain) == {0}
