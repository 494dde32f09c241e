"""Store edge cases: batching, retries next to newer versions, concurrent opening."""

from __future__ import annotations

import threading

from integration.conftest import Backend
from integration.domain import ALL_ITEMS, UPSERT_RESULT, Calls, count_words, orchestrator, rows
from turing import Sink, Source
from turing.store import Store

UPSERT = Sink.sql(UPSERT_RESULT)


def test_enqueue_in_batches_counts_only_new_tasks(store: Store) -> None:
    items = [(str(i % 1500), {"i": i}) for i in range(2500)]  # 1000 repeats across chunks
    assert store.enqueue("w", 1, items, batch=400) == 1500
    assert store.enqueue("w", 1, items, batch=400) == 0
    assert store.queue_counts() == {"w": {"pending": 1500}}
    [row] = rows(store, "SELECT input FROM turing_tasks WHERE subject = '7'")
    assert row["input"] == '{"i": 7}'  # the first occurrence wins


def test_retry_next_to_an_open_task_of_a_newer_version(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {2}
    v1 = orchestrator(domain, count_words(calls, source=Source(sql=ALL_ITEMS)))
    assert v1.process_pending_tasks().failed == 1
    [failed] = domain.runs(failed_only=True)
    v2 = orchestrator(
        domain, count_words(calls, version=2, source=Source(sql=ALL_ITEMS), sink=UPSERT)
    )
    assert v2.discover_pending_tasks(reprocess=True)[0].enqueued == 10
    # subject 2 has an open v2 task: requeueing its failed v1 task would make two open tasks
    assert domain.retry(failed["task_id"]) is False
    assert domain.retry_failed() == 0
    open_tasks = rows(
        domain,
        "SELECT COUNT(*) AS n FROM turing_tasks WHERE subject = '2' "
        "AND status IN ('pending', 'running')",
    )
    assert open_tasks == [{"n": 1}]
    calls.fail_ids = set()
    assert v2.process_pending_tasks().succeeded == 10


def test_stores_opened_at_once_on_a_fresh_database(backend: Backend) -> None:
    opened: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_one() -> None:
        try:
            start.wait()
            opened.append(backend.store())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert len(opened) == 3
        versions = rows(opened[0], "SELECT version FROM turing_migrations ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, len(versions) + 1))
    finally:
        for s in opened:
            s.close()


def test_retry_failed_reopens_only_the_newest_failed_task_of_a_subject(
    domain: Store, calls: Calls
) -> None:
    calls.fail_ids = {2}
    v1 = orchestrator(domain, count_words(calls, source=Source(sql=ALL_ITEMS)))
    assert v1.process_pending_tasks().failed == 1
    v2 = orchestrator(
        domain, count_words(calls, version=2, source=Source(sql=ALL_ITEMS), sink=UPSERT)
    )
    v2.discover_pending_tasks(reprocess=True)
    assert v2.process_pending_tasks().failed == 1  # subject 2 fails again, now on v2
    assert domain.queue_counts() == {"count_words": {"failed": 2, "succeeded": 18}}
    calls.fail_ids = set()
    assert domain.retry_failed() == 1
    [reopened] = rows(domain, "SELECT subject, version FROM turing_tasks WHERE status = 'pending'")
    assert (reopened["subject"], reopened["version"]) == ("2", 2)
    assert v2.process_pending_tasks().succeeded == 1
    assert domain.retry_failed() == 0  # the old v1 failure stays as it was
