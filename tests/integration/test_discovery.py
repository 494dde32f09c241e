"""Discovery: counts, samples, timing, and idempotent enqueuing on both backends."""

from __future__ import annotations

from integration.domain import (
    ALL_ITEMS,
    Calls,
    add_items,
    count_words,
    orchestrator,
    rows,
    summarize,
    tag_items,
)
from turing import Source
from turing.store import Store


def test_discovery_counts_samples_and_times(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    [d] = orch.discover_pending_tasks(samples=3)
    assert d.workflow == "count_words"
    assert d.error is None
    assert (d.count, d.enqueued) == (10, 10)
    assert d.sample_keys == ["1", "2", "3"]
    assert d.query_ms >= 0
    assert d.as_dict()["count"] == 10
    assert domain.queue_counts() == {"count_words": {"pending": 10}}
    assert calls.script == []  # discovery runs nothing


def test_discovery_without_enqueue_changes_no_queue(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    [d] = orch.discover_pending_tasks(enqueue=False, samples=2)
    assert (d.count, d.enqueued, d.sample_keys) == (10, 0, ["1", "2"])
    assert domain.queue_counts() == {}


def test_enqueuing_twice_never_creates_a_second_open_task(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    [first] = orch.discover_pending_tasks()
    counts = domain.queue_counts()
    [second] = orch.discover_pending_tasks()
    assert (first.enqueued, second.enqueued) == (10, 0)
    assert second.count == 10  # still pending in the domain, but already queued
    assert domain.queue_counts() == counts == {"count_words": {"pending": 10}}
    # also at store level, the same subject twice in one call
    assert domain.enqueue("count_words", 1, [("1", {}), ("1", {}), ("99", {})]) == 1
    assert domain.queue_counts() == {"count_words": {"pending": 11}}


def test_finished_subjects_are_not_reenqueued(domain: Store, calls: Calls) -> None:
    # A source that keeps returning every item (it does not exclude finished ones).
    orch = orchestrator(domain, count_words(calls, source=Source(sql=ALL_ITEMS)))
    report = orch.process_pending_tasks()
    assert report.succeeded == 10
    [again] = orch.discover_pending_tasks()
    assert (again.count, again.enqueued) == (10, 0)
    assert domain.queue_counts() == {"count_words": {"succeeded": 10}}
    assert orch.process_pending_tasks().processed == 0


def test_failed_subjects_are_not_reenqueued_by_discovery(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {3}
    orch = orchestrator(domain, count_words(calls))
    assert orch.process_pending_tasks().failed == 1
    [d] = orch.discover_pending_tasks()
    assert (d.count, d.enqueued) == (1, 0)  # item 3 still has no result, but has a task
    assert domain.queue_counts() == {"count_words": {"failed": 1, "succeeded": 9}}


def test_new_version_reenqueues_only_with_reprocess(domain: Store, calls: Calls) -> None:
    v1 = orchestrator(domain, count_words(calls, source=Source(sql=ALL_ITEMS)))
    assert v1.process_pending_tasks().succeeded == 10

    v2 = orchestrator(domain, count_words(calls, version=2, source=Source(sql=ALL_ITEMS)))
    [plain] = v2.discover_pending_tasks()
    assert plain.enqueued == 0
    assert domain.queue_counts() == {"count_words": {"succeeded": 10}}

    [again] = v2.discover_pending_tasks(reprocess=True)
    assert again.enqueued == 10
    assert domain.queue_counts() == {"count_words": {"pending": 10, "succeeded": 10}}
    versions = rows(
        domain,
        "SELECT version, COUNT(*) AS n FROM turing_tasks WHERE status = 'pending' GROUP BY version",
    )
    assert [(r["version"], r["n"]) for r in versions] == [(2, 10)]

    # reprocessing the same version again adds nothing (one task per subject and version)
    [twice] = v2.discover_pending_tasks(reprocess=True)
    assert twice.enqueued == 0


def test_pending_task_of_old_version_blocks_a_second_open_task(domain: Store, calls: Calls) -> None:
    v1 = orchestrator(domain, count_words(calls))
    assert v1.discover_pending_tasks()[0].enqueued == 10
    v2 = orchestrator(domain, count_words(calls, version=2))
    assert v2.discover_pending_tasks(reprocess=True)[0].enqueued == 0
    assert v2.discover_pending_tasks()[0].enqueued == 0
    assert domain.queue_counts() == {"count_words": {"pending": 10}}
    # and a running one blocks too
    [task] = domain.claim("w", 1)
    assert domain.enqueue("count_words", 3, [(task.subject, {})], reprocess=True) == 0
    open_tasks = rows(
        domain,
        "SELECT subject, COUNT(*) AS n FROM turing_tasks "
        "WHERE status IN ('pending', 'running') GROUP BY subject HAVING COUNT(*) > 1",
    )
    assert open_tasks == []


def test_new_items_are_enqueued_on_a_later_discovery(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    assert orch.discover_pending_tasks()[0].enqueued == 10
    add_items(domain, [11, 12])
    [d] = orch.discover_pending_tasks()
    assert (d.count, d.enqueued) == (12, 2)


def test_source_with_sql_error_is_reported_and_others_go_on(domain: Store, calls: Calls) -> None:
    broken = count_words(
        calls, name="broken_source", source=Source(sql="SELECT item_id, text FROM no_such_table")
    )
    orch = orchestrator(domain, broken, count_words(calls), tag_items())
    found = {d.workflow: d for d in orch.discover_pending_tasks()}
    bad = found["broken_source"]
    assert bad.error is not None
    assert "broken_source" in bad.error
    assert "no_such_table" in bad.error  # the database's own message
    assert (bad.count, bad.enqueued, bad.sample_keys) == (0, 0, [])
    assert found["count_words"].error is None
    assert found["count_words"].enqueued == 10
    assert found["tag_items"].enqueued == 10
    assert "broken_source" not in domain.queue_counts()

    report = orch.process_pending_tasks()
    assert report.succeeded == 20
    assert "no_such_table" in (
        {d.workflow: d for d in report.discovered}["broken_source"].error or ""
    )


def test_source_with_missing_key_column_is_an_error(domain: Store, calls: Calls) -> None:
    wf = count_words(calls, source=Source(sql="SELECT text FROM items"))
    [d] = orchestrator(domain, wf).discover_pending_tasks()
    assert d.error is not None
    assert "item_id" in d.error
    assert domain.queue_counts() == {}


def test_callable_source_and_priority(domain: Store, calls: Calls) -> None:
    def pending(tx: object) -> list[dict[str, object]]:
        return [{"item_id": 5, "text": "a b"}, {"item_id": 6, "text": "c"}]

    wf = count_words(calls, source=Source(fn=pending, priority=7))
    [d] = orchestrator(domain, wf, summarize(calls)).discover_pending_tasks(["count_words"])
    assert (d.count, d.enqueued, d.priority, d.sample_keys) == (2, 2, 7, ["5", "6"])
    priorities = rows(domain, "SELECT DISTINCT priority FROM turing_tasks")
    assert priorities == [{"priority": 7}]
