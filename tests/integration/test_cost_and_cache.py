"""Cost, limits and the response cache on both backends: batch limits stop claiming, per-run
budgets fail a run, cached answers cost nothing and are counted in history."""

from __future__ import annotations

from typing import Any

from integration.domain import rows, scalar, tag_answer, tag_items
from turing import Executor, FakeModel, ModelRequest, ModelResponse, Orchestrator, Registry, Usage
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
    orch, fake = managed(domain, batch_limits=BatchLimits(cost=1.0))
    report = orch.process_pending_tasks()
    assert report.processed == 5 and len(fake.requests) == 5
    assert report.stopped is not None and "batch cost limit" in report.stopped
    assert domain.queue_counts()["tag_items"] == {"pending": 5, "succeeded": 5}


def test_batch_token_limit(domain: Store) -> None:
    orch, _ = managed(domain, batch_limits=BatchLimits(tokens=450))
    report = orch.process_pending_tasks()
    assert report.processed == 3 and "batch token limit" in (report.stopped or "")


def test_run_budget_fails_the_run_with_kind_budget(domain: Store) -> None:
    orch, _ = managed(domain, run=RunLimits(tokens=100))
    report = orch.process_pending_tasks(max_tasks=2)
    assert report.failed == 2 and report.failures == {"budget": 2}
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
