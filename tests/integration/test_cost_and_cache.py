"""Cost, limits and the response cache on both backends: batch limits stop claiming, per-run
budgets fail a run, cached answers cost nothing and are counted in history."""

from __future__ import annotations

import dataclasses
from typing import Any

from integration.domain import rows, scalar, tag_answer, tag_items
from turing import (
    Executor,
    FakeModel,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Registry,
    Usage,
    Workflow,
)
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.cache import StoreCache
from turing.executor import RunLimits
from turing.orchestrator import BatchLimits
from turing.store import Store

PRICED = ActorSettings("fake", "m", price_input=1000.0, price_output=2000.0, max_retries=0)


def priced_answer(request: ModelRequest) -> ModelResponse:
    # 100 input + 50 output tokens: 0.1 + 0.1 = 0.2 per call at these prices
    return ModelResponse(tag_answer(request), Usage(100, 50, 1), "m")


def managed(store: Store, **limits: Any) -> tuple[Orchestrator, FakeModel]:
    fake = FakeModel(priced_answer)
    actor = ManagedActor(fake, PRICED, cache=lambda: StoreCache(store))
    executor = Executor({"m": actor}, limits=limits.pop("run", None))
    orch = Orchestrator(Registry([tag_items()]), executor, store, concurrency=1, **limits)
    return orch, fake


def test_cost_is_summed_in_reports_and_history(domain: Store) -> None:
    orch, fake = managed(domain)
    report = orch.process_pending_tasks()
    assert report.succeeded == 10 and len(fake.requests) == 10
    assert abs(report.total_cost() - 2.0) < 1e-9
    assert report.as_dict()["calls"] == 10
    assert abs(float(scalar(domain, "SELECT SUM(cost) FROM turing_runs")) - 2.0) < 1e-9
    assert abs(float(scalar(domain, "SELECT SUM(cost) FROM turing_calls")) - 2.0) < 1e-9


def test_batch_cost_limit_stops_claiming_gracefully(domain: Store) -> None:
    """Each call's quote (the prompt's tokens, 256 answer tokens when no max_tokens is set:
    0.518 at these prices) is reserved first: a call that does not fit is not made, its task
    goes back to pending with its attempt not counted, and nothing more is claimed."""
    orch, fake = managed(domain, batch_limits=BatchLimits(cost=1.0))
    report = orch.process_pending_tasks()
    assert len(fake.requests) == 3 and report.total_cost() <= 1.0
    assert (report.succeeded, report.deferred, report.failed) == (3, 1, 0)
    assert report.stopped is not None and "cost budget" in report.stopped
    assert domain.queue_counts()["tag_items"] == {"pending": 7, "succeeded": 3}
    assert (
        rows(domain, "SELECT attempts FROM turing_tasks WHERE status = 'pending'")
        == [{"attempts": 0}] * 7
    )


def test_batch_token_limit(domain: Store) -> None:
    orch, fake = managed(domain, batch_limits=BatchLimits(tokens=450))
    report = orch.process_pending_tasks()
    # quotes of about 260 tokens (no max_tokens), 150 used per call: two calls fit
    assert len(fake.requests) == 2
    assert report.total("input_tokens") + report.total("output_tokens") <= 450
    assert "token budget" in (report.stopped or "")


def test_a_batch_budget_holds_with_every_slot_busy(domain: Store) -> None:
    """Issue 11 (9): `--max-cost 0.1` reached 0.2487, because spending was counted when
    tasks completed, after eight calls in flight had spent. Quotes are reserved before the
    calls now: with max_tokens set (quote 0.1 + the prompt) and 8 slots, a 0.5 budget lets
    at most four calls run at once; each spends 0.2 (its 100 input tokens exceed the
    estimate), so the overshoot is at most what calls in flight spend beyond their quotes."""
    fake = FakeModel(priced_answer)
    actor = ManagedActor(fake, PRICED)
    wf = tag_items()
    step = dataclasses.replace(wf.steps[0].step, max_tokens=50)
    wf = Workflow(wf.name, input=wf.input.model, output=wf.output.model,  # type: ignore[arg-type]
                  subject_key="item_id", source=wf.source, sink=wf.sink, steps=[step])  # fmt: skip
    orch = Orchestrator(
        Registry([wf]), Executor({"m": actor}), domain, concurrency=8,
        batch_limits=BatchLimits(cost=0.5),
    )  # fmt: skip
    report = orch.process_pending_tasks()
    assert report.total_cost() <= 0.5 + 4 * (0.2 - 0.1)  # before: 8 x 0.2 = 1.6
    assert report.stopped is not None and report.failed == 0
    assert report.succeeded == len(fake.requests) < 10


def test_run_budget_fails_the_run_with_kind_budget(domain: Store) -> None:
    """The run's own limit is checked before each call too: a call whose quote (260
    tokens) does not fit a 100-token run is never made."""
    orch, fake = managed(domain, run=RunLimits(tokens=100))
    report = orch.process_pending_tasks(max_tasks=2)
    assert report.failed == 2 and report.failures == {"budget": 2}
    assert fake.requests == []  # refused before any money was spent
    errors = rows(domain, "SELECT error_kind, error FROM turing_runs")
    assert all(e["error_kind"] == "budget" and "limit 100" in e["error"] for e in errors)


def test_retried_tasks_ask_the_model_afresh(domain: Store) -> None:
    """A retry is never answered from the cache (issue 11, item 4): what failed may have
    been the answer; a first run of the same request later is (validated answers only)."""
    with domain.db.tx() as tx:  # the sink will fail: its table lacks the `tag` column
        tx.sql("DROP TABLE tags")
        tx.sql("CREATE TABLE tags (item_id INTEGER NOT NULL, label TEXT NOT NULL)")
    first, fake = managed(domain)
    report = first.process_pending_tasks()
    assert report.failures == {"sink": 10} and len(fake.requests) == 10
    assert scalar(domain, "SELECT COUNT(*) FROM turing_cache") == 10  # they validated
    with domain.db.tx() as tx:  # fixed; retry the failed tasks
        tx.sql("DROP TABLE tags")
        tx.sql("CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)")
    assert domain.retry_failed() == 10
    again, fake_again = managed(domain)
    report = again.process_pending_tasks()
    assert report.succeeded == 10 and len(fake_again.requests) == 10
    assert report.as_dict()["cached"] == 0
    assert scalar(domain, "SELECT COALESCE(SUM(hits), 0) FROM turing_cache") == 0


def test_only_validated_answers_are_cached_so_a_retry_converges(domain: Store) -> None:
    """The fault: a task that failed `output_invalid` failed again on `turing retry` with
    every call answered from the cache (0 of 3 recovered). Invalid answers are never cached."""
    broken = FakeModel(lambda r: "not json at all")
    actor = ManagedActor(broken, PRICED, cache=lambda: StoreCache(domain))
    orch = Orchestrator(Registry([tag_items()]), Executor({"m": actor}), domain, concurrency=2)
    assert orch.process_pending_tasks().failures == {"output_invalid": 10}
    assert scalar(domain, "SELECT COUNT(*) FROM turing_cache") == 0
    assert domain.retry_failed() == 10
    fixed, fake = managed(domain)
    report = fixed.process_pending_tasks()
    assert report.succeeded == 10 and len(fake.requests) == 10
