"""Metrics and traces of real processing on SQLite and PostgreSQL: the queue-depth collector
reads the database's counts (the review backlog among them), completed tasks are counted by
outcome after their commit, a claim that takes back an expired lease is counted, and each
task's span carries the queue's task id and subject."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integration.domain import DOMAIN_TABLES, add_items, orchestrator, rows, tag_answer, tag_items
from turing.actors.fake import FakeModel
from turing.executor import Executor
from turing.observe import Metrics, Tracing
from turing.orchestrator import Orchestrator
from turing.registry import Registry
from turing.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def depth(metrics: Metrics, status: str) -> float | None:
    return metrics.registry.get_sample_value(
        "turing_queue_tasks", {"workflow": "tag_items", "status": status}
    )


def test_queue_depth_and_outcomes_from_real_processing(store: Store) -> None:
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, range(1, 6))
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.watch(store)
    orch = orchestrator(store, tag_items(), observer=metrics)
    orch.discover_pending_tasks()
    assert depth(metrics, "pending") == 5
    assert depth(metrics, "succeeded") is None

    report = orch.process_pending_tasks(discover=False)
    assert report.succeeded == 5
    assert depth(metrics, "pending") == 5  # within the TTL: the cached counts
    clock.now += 2.0
    assert depth(metrics, "succeeded") == 5
    assert depth(metrics, "pending") is None
    finished = metrics.registry.get_sample_value(
        "turing_tasks_finished_total", {"workflow": "tag_items", "outcome": "succeeded"}
    )
    assert finished == 5
    repairs = sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == "turing_repairs"
        for s in family.samples
        if s.name == "turing_repairs_total"
    )
    assert repairs >= 5  # every answer of the fake needs a repair

    [task] = rows(store, "SELECT id FROM turing_tasks ORDER BY id LIMIT 1")
    with store.db.tx() as tx:  # a held output, as the review gate leaves it
        tx.sql("UPDATE turing_tasks SET status = 'review' WHERE id = :id", {"id": task["id"]})
    clock.now += 2.0
    backlog = metrics.registry.get_sample_value("turing_review_backlog", {"workflow": "tag_items"})
    assert backlog == 1
    assert depth(metrics, "succeeded") == 4


def test_a_reclaimed_lease_is_counted(store: Store) -> None:
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, [1, 2])
    metrics = Metrics()
    orch = orchestrator(store, tag_items(), observer=metrics)
    orch.discover_pending_tasks()
    [held] = store.claim("crashed-worker", 1, lease_s=0)  # its lease runs out at once
    assert metrics.registry.get_sample_value("turing_leases_reclaimed_total") == 0
    report = orch.process_pending_tasks(discover=False)
    assert report.succeeded == 2
    assert metrics.registry.get_sample_value("turing_leases_reclaimed_total") == 1
    [row] = rows(store, "SELECT status FROM turing_tasks WHERE id = :id", {"id": held.id})
    assert row["status"] == "succeeded"


def test_task_spans_carry_the_queue_task_id_and_subject(store: Store) -> None:
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, [1, 2, 3])
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    executor = Executor({"m": FakeModel(tag_answer)}, observer=Tracing(provider))
    orch = Orchestrator(Registry([tag_items()]), executor, store)
    report = orch.process_pending_tasks()
    assert report.succeeded == 3
    tasks = {r["id"]: r["subject"] for r in rows(store, "SELECT id, subject FROM turing_tasks")}
    spans = [s for s in exporter.get_finished_spans() if s.name == "invoke_workflow tag_items"]
    seen = {
        s.attributes["turing.task.id"]: s.attributes["turing.subject"]  # type: ignore[index]
        for s in spans
    }
    assert seen == tasks
