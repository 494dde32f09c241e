"""Processing: claim, execute, sink, report; failing sinks; dry run. Both backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from integration.domain import (
    INSERT_RESULT,
    Calls,
    count_words,
    orchestrator,
    rows,
    scalar,
    summarize,
    tag_answer,
    tag_items,
)
from turing import FakeModel, Sink, SinkSQL, Source
from turing.errors import StoreError
from turing.store import Store
from turing.store.db import Row, Tx


def results(store: Store) -> dict[int, int]:
    found = rows(store, "SELECT item_id, words FROM results ORDER BY item_id")
    return {int(r["item_id"]): int(r["words"]) for r in found}


def test_all_pending_processed_once(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    report = orch.process_pending_tasks()
    assert (report.processed, report.succeeded, report.failed) == (10, 10, 0)
    assert report.dry_run is False
    assert report.per_workflow["count_words"].succeeded == 10
    assert results(domain) == {i: i for i in range(1, 11)}
    assert domain.queue_counts() == {"count_words": {"succeeded": 10}}
    assert len(calls.script) == 10

    again = orch.process_pending_tasks()
    assert again.processed == 0
    assert len(calls.script) == 10
    assert scalar(domain, "SELECT COUNT(*) AS n FROM results") == 10


def test_already_queued_tasks_are_processed_without_discovery(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    orch.discover_pending_tasks()
    report = orch.process_pending_tasks(discover=False)
    assert report.succeeded == 10
    assert report.discovered == []


def test_max_tasks_is_respected(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls), concurrency=2)
    first = orch.process_pending_tasks(max_tasks=3)
    assert first.processed == 3
    assert len(results(domain)) == 3
    assert domain.queue_counts() == {"count_words": {"pending": 7, "succeeded": 3}}
    second = orch.process_pending_tasks(max_tasks=5)
    assert second.processed == 5
    rest = orch.process_pending_tasks()
    assert rest.processed == 2
    assert results(domain) == {i: i for i in range(1, 11)}
    assert len(calls.script) == 10


def test_workflows_filter(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls), tag_items())
    report = orch.process_pending_tasks(workflows=["tag_items"])
    assert set(report.per_workflow) == {"tag_items"}
    assert report.succeeded == 10
    assert [d.workflow for d in report.discovered] == ["tag_items"]
    assert calls.script == []
    assert results(domain) == {}
    assert domain.queue_counts() == {"tag_items": {"succeeded": 10}}
    # the other workflow's queued tasks are left alone by a filtered run
    orch.discover_pending_tasks(["count_words"])
    assert orch.process_pending_tasks(workflows=["tag_items"]).processed == 0
    assert domain.queue_counts()["count_words"] == {"pending": 10}


def test_several_workflows_in_one_call(domain: Store, calls: Calls) -> None:
    model = FakeModel(tag_answer)
    orch = orchestrator(domain, count_words(calls), tag_items(), model=model)
    report = orch.process_pending_tasks()
    assert report.succeeded == 20
    assert {k: v.succeeded for k, v in report.per_workflow.items()} == {
        "count_words": 10,
        "tag_items": 10,
    }
    assert len(model.requests) == 10
    tags = rows(domain, "SELECT item_id, tag FROM tags ORDER BY item_id, tag")
    assert len(tags) == 20
    assert {r["tag"] for r in tags if r["item_id"] == 4} == {"len4", "item"}
    # repairs happened (fences, bare arrays) and are counted
    assert report.repaired == 10
    assert report.repairs["wrap_array"] == 5
    assert report.repairs["strip_fences"] == 5
    assert report.per_workflow["tag_items"].input_tokens > 0


def test_source_depending_on_another_sink_runs_in_a_later_round(
    domain: Store, calls: Calls
) -> None:
    orch = orchestrator(domain, summarize(calls), count_words(calls))
    report = orch.process_pending_tasks()
    assert report.per_workflow["count_words"].succeeded == 10
    assert report.per_workflow["summarize"].succeeded == 10
    summaries = rows(domain, "SELECT item_id, summary FROM summaries ORDER BY item_id")
    assert [r["summary"] for r in summaries] == [f"{i} words" for i in range(1, 11)]
    found = {d.workflow: d for d in report.discovered}
    assert found["summarize"].enqueued == 10
    assert orch.process_pending_tasks().processed == 0


def test_max_tasks_holds_across_rounds(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, summarize(calls), count_words(calls))
    report = orch.process_pending_tasks(max_tasks=12)
    assert report.processed == 12
    assert report.per_workflow["count_words"].processed == 10
    assert report.per_workflow["summarize"].processed == 2


def test_failed_run_fails_its_task_and_others_go_on(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {4}
    orch = orchestrator(domain, count_words(calls))
    report = orch.process_pending_tasks()
    assert (report.succeeded, report.failed) == (9, 1)
    assert report.failures == {"script_crash": 1}
    assert 4 not in results(domain)
    [failed] = rows(
        domain, "SELECT subject, status, last_error FROM turing_tasks WHERE subject = '4'"
    )
    assert failed["status"] == "failed"
    assert "cannot count item 4" in failed["last_error"]


# --------------------------------------------------------------------- failing sinks
def _sink_fn_failing_on(subject: str) -> Sink:
    def write(tx: Tx, output: dict[str, Any], task: Mapping[str, Any]) -> None:
        tx.sql(INSERT_RESULT, output)
        tx.sql(
            "INSERT INTO summaries (item_id, summary) VALUES (:item_id, 'partial')",
            {"item_id": output["item_id"]},
        )
        if task["subject"] == subject:
            raise RuntimeError(f"refusing subject {subject}")

    return Sink(fn=write)


def _sink_sql_failing_on(item_id: int) -> Sink:
    # Second statement violates NOT NULL for one item only, after the first one wrote.
    return Sink(
        (
            SinkSQL(INSERT_RESULT),
            SinkSQL(
                "INSERT INTO summaries (item_id, summary) VALUES "
                f"(:item_id, CASE WHEN :item_id = {item_id} THEN NULL ELSE 'ok' END)"
            ),
        )
    )


@pytest.mark.parametrize(
    ("sink", "mention"),
    [
        pytest.param(_sink_fn_failing_on("5"), "refusing subject 5", id="callable-raises"),
        pytest.param(_sink_sql_failing_on(5), "summary", id="sql-constraint"),
    ],
)
def test_failing_sink_fails_only_its_task_and_leaves_nothing(
    domain: Store, calls: Calls, sink: Sink, mention: str
) -> None:
    orch = orchestrator(domain, count_words(calls, sink=sink))
    report = orch.process_pending_tasks()
    assert (report.processed, report.succeeded, report.failed) == (10, 9, 1)
    assert report.failures == {"sink": 1}
    # nothing the failing sink wrote remains, the others' writes do
    assert sorted(results(domain)) == [i for i in range(1, 11) if i != 5]
    summaries = rows(domain, "SELECT item_id FROM summaries ORDER BY item_id")
    assert [r["item_id"] for r in summaries] == [i for i in range(1, 11) if i != 5]
    [task] = rows(
        domain, "SELECT id, status, last_error, lease_owner FROM turing_tasks WHERE subject = '5'"
    )
    assert task["status"] == "failed"
    assert task["lease_owner"] is None
    assert "sink" in task["last_error"]
    assert mention in task["last_error"]
    [run] = domain.runs(failed_only=True)
    assert run["subject"] == "5"
    assert run["error_kind"] == "sink"
    assert run["task_id"] == task["id"]
    assert domain.queue_counts() == {"count_words": {"failed": 1, "succeeded": 9}}


# -------------------------------------------------------------------------- dry run
def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (domain and turing_*), in a stable order."""
    with store.db.read() as tx:
        if tx.dialect == "sqlite":
            names = [
                r["name"]
                for r in tx.sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            ]
        else:
            names = [
                r["table_name"]
                for r in tx.sql(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() ORDER BY table_name"
                )
            ]
        assert "turing_tasks" in names and "items" in names
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in names:
            found: list[Row] = tx.sql(f'SELECT * FROM "{name}"')
            out[name] = sorted((tuple(r.items()) for r in found), key=repr)
    return out


def test_dry_run_changes_nothing(domain: Store, calls: Calls) -> None:
    model = FakeModel(tag_answer)
    orch = orchestrator(domain, count_words(calls), tag_items(), model=model)
    # some state first: a finished task, queued tasks, history, a sync
    orch.process_pending_tasks(max_tasks=2, workflows=["count_words"])
    orch.discover_pending_tasks()
    orch.sync_contracts()
    before = dump(domain)
    assert before["turing_tasks"] and before["turing_runs"]

    report = orch.process_pending_tasks(dry_run=True)

    assert dump(domain) == before
    assert report.dry_run is True
    assert report.as_dict()["dry_run"] is True
    assert report.processed == 18  # 8 items still need a count, 10 need tags
    assert report.succeeded == 18
    assert len(model.requests) == 10  # models are called in a dry run
    assert len(calls.script) == 2 + 8


def test_dry_run_reports_a_failing_sink(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls, sink=_sink_sql_failing_on(3)))
    before = dump(domain)
    report = orch.process_pending_tasks(dry_run=True)
    assert dump(domain) == before
    assert (report.processed, report.succeeded, report.failed) == (10, 9, 1)
    assert report.failures == {"sink": 1}


def test_dry_run_respects_max_tasks(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    report = orch.process_pending_tasks(dry_run=True, max_tasks=4)
    assert report.processed == 4
    assert domain.queue_counts() == {}


def test_percent_signs_and_casts_in_source_and_sink_sql(domain: Store, calls: Calls) -> None:
    source = Source(
        sql={
            "sqlite": "SELECT item_id, text FROM items WHERE text LIKE 'w0%' AND item_id <= 3",
            "postgres": "SELECT item_id::int AS item_id, text::text FROM items "
            "WHERE text LIKE 'w0%' AND item_id <= 3",
        }
    )
    sink = Sink(
        (
            SinkSQL(
                {
                    "sqlite": "INSERT INTO summaries (item_id, summary) "
                    "VALUES (:item_id, '100% ' || :words)",
                    "postgres": "INSERT INTO summaries (item_id, summary) "
                    "VALUES (:item_id::int, '100% ' || :words::text)",
                }
            ),
        )
    )
    orch = orchestrator(domain, count_words(calls, source=source, sink=sink))
    [d] = orch.discover_pending_tasks()
    assert (d.error, d.count) == (None, 3)
    assert orch.process_pending_tasks().succeeded == 3
    found = rows(domain, "SELECT summary FROM summaries ORDER BY item_id")
    assert [r["summary"] for r in found] == ["100% 1", "100% 2", "100% 3"]


def test_a_database_that_stays_away_while_completing_defers_never_fails(
    domain: Store, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault of issue 10 (3): a database fault at completion used to fail the task for
    good ("completing the task failed"). Now completion is retried for a while, and if the
    database stays away the task goes back to pending (attempt not counted), not failed."""
    real = domain.complete_many
    down = {"on": True}

    def flaky(items: Any, *args: Any, **kwargs: Any) -> list[str]:
        if down["on"] and any(item.task.subject == "4" for item in items):
            raise StoreError("postgres: AdminShutdown: terminating connection")
        return real(items, *args, **kwargs)

    monkeypatch.setattr(domain, "complete_many", flaky)
    orch = orchestrator(domain, count_words(calls), completion_patience_s=0.2)
    report = orch.process_pending_tasks(discover=True)
    # every task of the group commit that held item 4 was given back; none failed
    assert report.failed == 0 and report.deferred >= 1
    assert report.succeeded + report.deferred == 10
    deferred = rows(domain, "SELECT subject, attempts, last_error FROM turing_tasks "
                    "WHERE status = 'pending'")  # fmt: skip
    assert len(deferred) == report.deferred and "4" in {r["subject"] for r in deferred}
    assert all(r["attempts"] == 0 and "AdminShutdown" in r["last_error"] for r in deferred)
    assert 4 not in results(domain)
    history = rows(domain, "SELECT status, error_kind FROM turing_runs WHERE subject = '4'")
    assert history == [{"status": "deferred", "error_kind": "store"}]  # the answer is on record
    down["on"] = False  # the database is back: the deferred tasks are claimable again
    with domain.db.tx() as tx:
        tx.sql("UPDATE turing_tasks SET not_before = NULL")
    again = orch.process_pending_tasks(discover=False)
    assert (again.succeeded, again.failed) == (report.deferred, 0)
    assert results(domain) == {i: i for i in range(1, 11)}


def test_a_dependent_workflow_does_not_wait_for_a_hung_task(domain: Store) -> None:
    """Issue 11 (8): discovery ran only between rounds, so `summarize` (whose source reads
    `count_words`' results) waited for count_words' slowest task, a hung one included. Now
    the queue is refilled while tasks are in flight: item 1's count, which waits until a
    summary exists (at most 20 s), is released by summaries made while it hangs."""
    import threading

    summaries_made = threading.Event()
    order: list[str] = []
    calls = Calls()

    def count(data: dict[str, Any]) -> dict[str, Any]:
        if data["item_id"] == 1:
            released = summaries_made.wait(20)
            order.append("item 1 released" if released else "item 1 timed out")
        return {"item_id": data["item_id"], "words": len(data["text"].split())}

    summary_wf = summarize(calls)
    inner = summary_wf.steps[0].step.run  # type: ignore[union-attr]

    def summarize_and_say(data: dict[str, Any]) -> dict[str, Any]:
        summaries_made.set()
        return inner(data)  # type: ignore[misc,no-any-return]

    object.__setattr__(summary_wf.steps[0].step, "run", summarize_and_say)
    orch = orchestrator(domain, count_words(calls, run=count), summary_wf, concurrency=3)
    report = orch.process_pending_tasks()
    assert order == ["item 1 released"]
    assert report.per_workflow["summarize"].succeeded == 10
    assert report.per_workflow["count_words"].succeeded == 10
