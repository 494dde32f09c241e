"""Period budgets inside real runs, on both backends: workers sharing one budget through the
database never go over it by more than their calls in flight; a task without room waits
(pending, attempt not counted) and runs in the next period; a crashed worker's hold
expires; settling gives back what a call did not spend. The budgets' clock is injected."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from integration.domain import rows, tag_answer, tag_items
from turing import Executor, FakeModel, ModelRequest, ModelResponse, Orchestrator, Registry, Usage
from turing.actors.limited import LimitedActor
from turing.limits import LimitsConfig
from turing.limits.spending import Held, PeriodBudgets, Refusal
from turing.store import Store


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Priced(FakeModel):
    """Quotes `quote` USD a call and really costs `cost` (a fixed price per call)."""

    def __init__(self, quote: float, cost: float) -> None:
        super().__init__(name="priced")
        self.quote_usd, self.cost_usd = quote, cost
        self.calls = 0
        self.lock = threading.Lock()

    def quote(self, request: ModelRequest) -> Usage:
        return Usage(10, 5, 1, self.quote_usd)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        with self.lock:
            self.calls += 1
        return ModelResponse(tag_answer(request), Usage(10, 5, 1, self.cost_usd), "m")


def budgeted(
    store: Store, spec: dict[str, str], model: FakeModel, clock: Callable[[], float], **kw: Any
) -> tuple[Orchestrator, PeriodBudgets]:
    holder = kw.pop("holder", "w1")
    budgets = PeriodBudgets(
        store.db, LimitsConfig(budget=spec).budgets(), holder=holder, clock=clock
    )
    actor = LimitedActor(model, "m", None, LimitsConfig(), budgets)
    kw.setdefault("concurrency", 4)
    orch = Orchestrator(Registry([tag_items()]), Executor({"m": actor}), store, **kw)
    return orch, budgets


def tasks(store: Store) -> list[Any]:
    return rows(store, "SELECT status, attempts, not_before FROM turing_tasks ORDER BY id")


def test_two_workers_never_spend_more_than_the_budget(
    domain: Store, stores: Callable[[], Store]
) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    model = Priced(quote=0.1, cost=0.1)
    first, budgets = budgeted(domain, {"workflow:tag_items": "0.5 USD/day"}, model, clock)
    first.discover_pending_tasks()
    second, _ = budgeted(stores(), {"workflow:tag_items": "0.5 USD/day"}, model, clock)
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda o=o: reports.append(o.process_pending_tasks(discover=False)))
        for o in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.succeeded for r in reports) == 5 == model.calls  # 0.5 USD at 0.1 a call
    [state] = budgets.states()
    assert state.spent == pytest.approx(0.5) and state.held == 0.0
    left = [t for t in tasks(domain) if t["status"] != "succeeded"]
    assert len(left) == 5
    assert all(t["status"] == "pending" and t["attempts"] == 0 for t in left)  # waiting
    assert any("tag_items" in r.waiting for r in reports)


def test_calls_dearer_than_their_quote_overshoot_by_at_most_the_calls_in_flight(
    domain: Store, stores: Callable[[], Store]
) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    model = Priced(quote=0.1, cost=0.15)  # each call costs 0.05 more than it was quoted
    first, budgets = budgeted(domain, {"global": "0.6 USD/day"}, model, clock, concurrency=3)
    first.discover_pending_tasks()
    second, _ = budgeted(stores(), {"global": "0.6 USD/day"}, model, clock, concurrency=3)
    threads = [threading.Thread(target=o.process_pending_tasks) for o in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    [state] = budgets.states()
    in_flight = 6  # two workers, three slots each
    assert 0.5 <= state.spent <= 0.6 + in_flight * 0.05 + 1e-9


def test_a_blocked_task_waits_and_runs_in_the_next_period(domain: Store) -> None:
    clock = Clock(ts("2026-03-01T23:30"))
    model = Priced(quote=0.1, cost=0.1)
    orch, _ = budgeted(domain, {"actor:m": "0.1 USD/day"}, model, clock, concurrency=1)
    report = orch.process_pending_tasks()
    assert report.succeeded == 1 and report.failed == 0
    assert "0.1 USD/day" in report.waiting["tag_items"]
    [before] = rows(
        domain, "SELECT MIN(not_before) AS t FROM turing_tasks WHERE status = 'pending'"
    )
    waiting = [t for t in tasks(domain) if t["status"] == "pending"]
    assert len(waiting) == 9 and all(t["attempts"] == 0 for t in waiting)
    # deferred until midnight UTC (30 minutes of the budgets' clock), not a retry
    done = rows(domain, "SELECT MAX(finished_at) AS t FROM turing_tasks")[0]["t"]
    assert before["t"] - done == pytest.approx(1800, abs=60)
    # the next day comes (both clocks): the task runs
    with domain.db.tx() as tx:
        tx.sql("UPDATE turing_tasks SET not_before = NULL WHERE status = 'pending'")
    clock.now = ts("2026-03-02T00:00:01")
    again = orch.process_pending_tasks(discover=False)
    assert again.succeeded == 1 and model.calls == 2


def test_a_crashed_workers_hold_expires_and_settle_releases_the_rest(store: Store) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    spec = LimitsConfig(budget={"global": "1 USD/hour"}).budgets()
    dead = PeriodBudgets(store.db, spec, holder="dead", clock=clock, hold_s=60)
    alive = PeriodBudgets(store.db, spec, holder="alive", clock=clock, hold_s=60)
    assert isinstance(dead.reserve(spec, Usage(1, 1, 1, 0.8)), Held)  # never settled
    assert isinstance(alive.reserve(spec, Usage(1, 1, 1, 0.8)), Refusal)
    clock.now += 61  # its hold expired: the budget is free again
    held = alive.reserve(spec, Usage(1, 1, 1, 0.8))
    assert isinstance(held, Held)
    alive.settle(held, Usage(1, 1, 1, 0.05))
    [state] = alive.states()
    assert (state.spent, state.held) == (pytest.approx(0.05), 0.0)


def test_settling_gives_back_what_a_call_did_not_spend(domain: Store) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    model = Priced(quote=0.3, cost=0.05)
    orch, budgets = budgeted(domain, {"workflow:tag_items": "0.5 USD/day"}, model, clock,
                             concurrency=1)  # fmt: skip
    report = orch.process_pending_tasks()
    # each call needs spent + 0.3 <= 0.5: five calls (a hold never given back would allow one)
    assert report.succeeded == 5
    [state] = budgets.states()
    assert (state.spent, state.held) == (pytest.approx(0.25), 0.0)


def managed(store: Store, spec: dict[str, str], clock: Clock, max_tokens: int = 50) -> Any:
    """A provider-style actor (prices from its settings) under period budgets, with the
    database's response cache."""
    from turing.actors.managed import ManagedActor
    from turing.actors.settings import ActorSettings
    from turing.cache import StoreCache

    budgets = PeriodBudgets(store.db, LimitsConfig(budget=spec).budgets(), holder="w", clock=clock)
    settings = ActorSettings(
        "fake", "m", name="m", max_retries=0, max_tokens=max_tokens,
        price_input=1000.0, price_output=2000.0,
    )  # fmt: skip
    cache = StoreCache(store)
    return ManagedActor(FakeModel(tag_answer), settings, cache=lambda: cache, budgets=budgets)


def test_a_managed_actor_spends_what_history_records_and_cache_hits_spend_nothing(
    domain: Store,
) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    actor = managed(domain, {"actor:m": "1 USD/day"}, clock)
    orch = Orchestrator(Registry([tag_items()]), Executor({"m": actor}), domain, concurrency=2)
    first = orch.process_pending_tasks()
    assert first.succeeded == 10  # quoted ~0.11 a call (max_tokens priced), cost ~0.03
    [state] = actor.budgets.states()
    recorded = rows(domain, "SELECT SUM(cost) AS c FROM turing_runs WHERE status = 'succeeded'")
    assert state.spent == pytest.approx(float(recorded[0]["c"])) and state.held == 0.0
    assert 0.0 < state.spent <= 1.0
    # the same prompts again (the sink's rows removed): answered from the cache, no spending
    with domain.db.tx() as tx:
        tx.sql("DELETE FROM tags")
        tx.sql("DELETE FROM turing_tasks WHERE status = 'succeeded'")
    # ... even with the budget lowered below what was spent (no call would be made now)
    full = managed(domain, {"actor:m": f"{state.spent:.6f} USD/day"}, clock)
    orch = Orchestrator(Registry([tag_items()]), Executor({"m": full}), domain, concurrency=2)
    again = orch.process_pending_tasks()
    assert again.succeeded == 10 and again.total("cached") == 10 and not again.waiting
    [after] = full.budgets.states()
    assert after.spent == pytest.approx(state.spent)


def test_a_call_larger_than_the_whole_budget_fails_its_task_clearly(domain: Store) -> None:
    clock = Clock(ts("2026-03-01T12:00"))
    actor = managed(domain, {"actor:m": "100 tokens/day"}, clock, max_tokens=500)
    orch = Orchestrator(Registry([tag_items()]), Executor({"m": actor}), domain)
    report = orch.process_pending_tasks(max_tasks=1)
    assert report.failed == 1 and not report.waiting
    [task] = rows(domain, "SELECT status, last_error FROM turing_tasks WHERE status = 'failed'")
    assert "more than the whole budget" in task["last_error"]


def test_a_worker_waits_on_a_full_budget_and_says_why(domain: Store) -> None:
    from integration.test_worker import Running, wait_for
    from turing.worker import Worker

    clock = Clock(ts("2026-03-01T12:00"))
    model = Priced(quote=0.1, cost=0.1)
    orch, _ = budgeted(domain, {"workflow:tag_items": "0.3 USD/day"}, model, clock)
    orch.discover_pending_tasks()
    logged: list[str] = []
    running = Running(Worker(orch, idle_s=0.02, log=logged.append))
    waiting = (
        "SELECT COUNT(*) AS n FROM turing_tasks WHERE status = 'pending' AND attempts = 0 "
        "AND last_error LIKE 'budget_wait%'"
    )
    wait_for(lambda: rows(domain, waiting)[0]["n"] == 7)  # every task the budget left out
    summary = running.stop()
    assert summary.stop_reason == "test"  # the budget made work wait, it did not stop us
    assert "0.3 USD/day" in summary.report.waiting["tag_items"]
    assert summary.report.succeeded == 3 and summary.report.failed == 0
    waits = [line for line in logged if line.startswith("tag_items waits:")]
    assert len(waits) == 1 and "0.3 USD/day" in waits[0], logged  # said once
