"""Plans executed through `Orchestrator.execute_plan`, on SQLite and on PostgreSQL.

The domain is the integration one (items 1..10, item i has i words); the workflows here add
declared filters to its sources (`id_from`: item_id >= n, `id_below`: item_id < n,
`added_since`: added_at >= a date) and a few single-run workflows to reference.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import (
    PENDING_ITEMS,
    Calls,
    count_words,
    orchestrator,
    rows,
    scalar,
    tag_answer,
    text_of,
)
from turing import (
    FakeModel,
    LLMStep,
    Orchestrator,
    ScriptStep,
    Sink,
    Source,
    SourceFilter,
    Workflow,
)
from turing.planning import (
    ForEach,
    Plan,
    PlanError,
    PlanLimits,
    PlanReport,
    PlanStep,
    Ref,
    StepReport,
)
from turing.store import Store
from turing.store.db import Row

FILTERS = {
    "id_from": SourceFilter("item_id", ">=", "integer", "Items from this id on."),
    "id_below": SourceFilter("item_id", "<", "integer", "Items below this id."),
}
ALL_ITEMS = "SELECT item_id, text FROM items ORDER BY item_id"


# ------------------------------------------------------------------------ workflows
class ItemIn(BaseModel):
    item_id: int
    text: str


class TagsOut(BaseModel):
    item_id: int
    tags: list[str]


class ResultIn(BaseModel):
    item_id: int
    words: int


class SummaryOut(BaseModel):
    item_id: int
    summary: str


class MakeIn(BaseModel):
    n: int


class MakeOut(BaseModel):
    item_id: int
    text: str


def counting(calls: Calls, source_sql: str = PENDING_ITEMS) -> Workflow:
    return count_words(calls, source=Source(sql=source_sql, filters=FILTERS))


def summarizing(calls: Calls) -> Workflow:
    def run(data: dict[str, Any]) -> dict[str, Any]:
        calls.script.append({"summarize": data["item_id"]})
        return {"item_id": data["item_id"], "summary": f"{data['words']} words"}

    return Workflow(
        "summarize",
        input=ResultIn,
        output=SummaryOut,
        subject_key="item_id",
        source=Source(
            sql="SELECT item_id, words FROM results r WHERE NOT EXISTS "
            "(SELECT 1 FROM summaries s WHERE s.item_id = r.item_id) ORDER BY item_id",
            filters=FILTERS,
        ),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[ScriptStep("summarize", run=run)],
    )


def tagging() -> Workflow:
    return Workflow(
        "tag_items",
        input=ItemIn,
        output=TagsOut,
        subject_key="item_id",
        source=Source(
            sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
            "(SELECT 1 FROM tags t WHERE t.item_id = i.item_id) ORDER BY item_id",
            filters=FILTERS,
        ),
        sink=Sink.sql(
            "DELETE FROM tags WHERE item_id = :item_id",
            "INSERT INTO tags (item_id, tag) VALUES (:item_id, :value)",
            for_each="tags",
        ),
        steps=[LLMStep("tag", prompt="Tag item {{ item_id }}: {{ text }}", actor="m")],
    )


def making(calls: Calls) -> Workflow:
    def run(data: dict[str, Any]) -> dict[str, Any]:
        calls.script.append({"make": data["n"]})
        if data["n"] in calls.fail_ids:
            raise RuntimeError(f"cannot make {data['n']}")
        return {"item_id": 100 + data["n"], "text": text_of(data["n"])}

    return Workflow("make_text", input=MakeIn, output=MakeOut, steps=[ScriptStep("make", run=run)])


def orch_for(domain: Store, calls: Calls, *extra: Workflow, **kw: Any) -> Orchestrator:
    workflows = extra or (counting(calls), summarizing(calls), tagging(), making(calls))
    return orchestrator(domain, *workflows, model=FakeModel(tag_answer), **kw)


def for_each(sid: str, workflow: str, after: tuple[str, ...] = (), **filters: Any) -> PlanStep:
    return PlanStep(sid, workflow, {}, ForEach(filters), after)


def run_plan(orch: Orchestrator, *steps: PlanStep, **kw: Any) -> PlanReport:
    return orch.execute_plan(Plan("test goal", tuple(steps)), **kw)


def results(store: Store) -> dict[int, int]:
    return {
        int(r["item_id"]): int(r["words"])
        for r in rows(store, "SELECT item_id, words FROM results ORDER BY item_id")
    }


def ids(store: Store, table: str) -> list[int]:
    return [
        int(r["item_id"]) for r in rows(store, f"SELECT DISTINCT item_id FROM {table} ORDER BY 1")
    ]


def tasks(store: Store, workflow: str | None = None) -> list[Row]:
    where = f"WHERE workflow = '{workflow}'" if workflow else ""
    return rows(store, f"SELECT workflow, subject, status FROM turing_tasks {where} ORDER BY id")


# what a plan run records about itself: a second run of a plan adds a record, nothing else
PLAN_RECORD = ("turing_plan_runs", "turing_plan_steps")


def dump(store: Store, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (domain and turing_*) but `skip`'s, in a stable order."""
    with store.db.read() as tx:
        if tx.dialect == "sqlite":
            sql = "SELECT name AS t FROM sqlite_master WHERE type = 'table' ORDER BY name"
        else:
            sql = (
                "SELECT table_name AS t FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY table_name"
            )
        names = [r["t"] for r in tx.sql(sql) if r["t"] not in skip]
        assert "turing_tasks" in names and "items" in names
        return {
            n: sorted(
                (
                    tuple(r.items())
                    for r in tx.sql(f'SELECT * FROM "{n}"')
                    if r.get("name") not in skip  # sqlite_sequence's row of a skipped table
                ),
                key=repr,
            )
            for n in names
        }


# ------------------------------------------------------------- for_each with filters
def test_for_each_processes_exactly_the_filtered_rows(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    report = run_plan(orch, for_each("s1", "count_words", id_from=4, id_below=8))

    assert report.ok and report.status == "succeeded"
    s1 = report.steps["s1"]
    assert (s1.status, s1.mode, s1.tasks, s1.succeeded, s1.failed) == (
        "succeeded", "for_each", 4, 4, 0
    )  # fmt: skip
    assert (s1.processed, s1.already_done, s1.previously_failed) == (4, 0, 0)
    assert results(domain) == {i: i for i in range(4, 8)}
    assert sorted(c["item_id"] for c in calls.script) == [4, 5, 6, 7]
    assert [(t["subject"], t["status"]) for t in tasks(domain)] == [
        (str(i), "succeeded") for i in range(4, 8)
    ]  # nothing enqueued outside the filter, no other workflow touched
    assert scalar(domain, "SELECT COUNT(*) FROM turing_runs WHERE status = 'succeeded'") == 4


def test_running_the_same_plan_twice_writes_once(domain: Store, calls: Calls) -> None:
    """The source lists pending items only: the second run finds nothing to do."""
    orch = orch_for(domain, calls)
    plan = (for_each("s1", "count_words", id_from=6),)
    first = run_plan(orch, *plan)
    assert first.steps["s1"].tasks == first.steps["s1"].succeeded == 5
    before = dump(domain, skip=PLAN_RECORD)

    second = run_plan(orch, *plan)

    s1 = second.steps["s1"]
    assert second.ok and s1.status == "succeeded"
    assert (s1.tasks, s1.processed, s1.succeeded) == (0, 0, 0)
    assert dump(domain, skip=PLAN_RECORD) == before
    assert scalar(domain, "SELECT COUNT(*) FROM turing_plan_runs") == 2
    assert len(calls.script) == 5


def test_a_source_of_all_rows_counts_done_tasks_and_runs_nothing(
    domain: Store, calls: Calls
) -> None:
    """The source lists every item again; the task queue keeps the sink exactly-once (a second
    INSERT into results would violate its primary key)."""
    orch = orch_for(domain, calls, counting(calls, ALL_ITEMS))
    plan = (for_each("s1", "count_words", id_below=4),)
    assert run_plan(orch, *plan).steps["s1"].succeeded == 3
    before = dump(domain, skip=PLAN_RECORD)

    second = run_plan(orch, *plan)

    s1 = second.steps["s1"]
    assert second.ok and s1.status == "succeeded"
    assert (s1.tasks, s1.already_done, s1.processed, s1.failed) == (3, 3, 0, 0)
    assert dump(domain, skip=PLAN_RECORD) == before
    assert scalar(domain, "SELECT COUNT(*) FROM turing_plan_runs") == 2
    assert len(calls.script) == 3
    assert results(domain) == {1: 1, 2: 2, 3: 3}


def test_previously_failed_tasks_are_counted_not_rerun(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {2}
    orch = orch_for(domain, calls, counting(calls, ALL_ITEMS))
    first = run_plan(orch, for_each("s1", "count_words", id_below=4))
    assert first.steps["s1"].failed == 1 and first.steps["s1"].status == "failed"
    calls.fail_ids = set()

    second = run_plan(orch, for_each("s1", "count_words", id_below=4))

    s1 = second.steps["s1"]
    assert (s1.tasks, s1.already_done, s1.previously_failed, s1.processed) == (3, 2, 1, 0)
    assert results(domain) == {1: 1, 3: 3}


def test_dependent_step_sees_what_the_first_wrote(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    report = run_plan(
        orch,
        for_each("s1", "count_words", id_from=3, id_below=6),
        for_each("s2", "summarize", ("s1",), id_from=3, id_below=6),
    )
    assert report.ok
    assert [report.steps[s].tasks for s in ("s1", "s2")] == [3, 3]
    assert ids(domain, "summaries") == [3, 4, 5]
    summaries = rows(domain, "SELECT item_id, summary FROM summaries ORDER BY item_id")
    assert [r["summary"] for r in summaries] == ["3 words", "4 words", "5 words"]
    # summarize ran only after every count of s1 was stored
    order = [next(iter(c)) if "summarize" in c else "count" for c in calls.script]
    assert order == ["count"] * 3 + ["summarize"] * 3


def test_for_each_limit_takes_the_first_rows(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    step = PlanStep("s1", "count_words", {}, ForEach({"id_from": 2}, limit=3))
    report = run_plan(orch, step)
    assert report.steps["s1"].tasks == 3
    assert results(domain) == {2: 2, 3: 3, 4: 4}


# ------------------------------------------------------------------------- failures
def test_failed_step_skips_its_dependants_and_says_why(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {5, 6}
    orch = orch_for(domain, calls)
    events: list[tuple[str, str, str]] = []
    report = orch.execute_plan(
        Plan(
            "count then summarize; tag on the side",
            (
                for_each("s1", "count_words", id_from=5, id_below=8),
                for_each("s2", "summarize", ("s1",), id_from=5, id_below=8),
                for_each("s3", "tag_items", id_from=5, id_below=8),
            ),
        ),
        on_event=lambda e, s: events.append((e, s.id, s.status)),
    )

    assert not report.ok and report.status == "failed"
    s1, s2, s3 = (report.steps[s] for s in ("s1", "s2", "s3"))
    assert (s1.status, s1.tasks, s1.succeeded, s1.failed) == ("failed", 3, 1, 2)
    assert s1.failures == {"script_crash": 2}
    assert s1.reason == "2 of 3 tasks failed (script_crash x2)"
    assert s2.status == "skipped"
    assert s2.reason is not None and s2.reason.startswith("s1 failed: 2 of 3 tasks failed")
    assert (s2.tasks, s2.processed) == (0, 0)
    assert s3.status == "succeeded" and s3.succeeded == 3  # independent: unaffected
    assert ("finished", "s2", "skipped") in events
    assert ("finished", "s1", "failed") in events
    assert not ids(domain, "summaries") and not tasks(domain, "summarize")
    assert results(domain) == {7: 7}
    failed = {t["subject"] for t in tasks(domain, "count_words") if t["status"] == "failed"}
    assert failed == {"5", "6"}
    as_dict = report.as_dict()
    assert as_dict["status"] == "failed"
    assert [s["status"] for s in as_dict["steps"]] == ["failed", "skipped", "succeeded"]


def test_skipping_cascades_down_the_chain(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {3}
    orch = orch_for(domain, calls)
    report = run_plan(
        orch,
        PlanStep("s1", "make_text", {"n": 3}),
        for_each("s2", "count_words", ("s1",), id_from=9),
        for_each("s3", "summarize", ("s2",), id_from=9),
    )
    s1, s2, s3 = (report.steps[s] for s in ("s1", "s2", "s3"))
    assert (s1.status, s1.mode, s1.failed) == ("failed", "once", 1)
    assert s1.reason is not None and "cannot make 3" in s1.reason
    assert s2.status == s3.status == "skipped"
    assert s2.reason is not None and s2.reason.startswith("s1 failed")
    assert s3.reason is not None and s3.reason.startswith("s2 skipped")
    assert not tasks(domain)
    [run] = domain.runs(failed_only=True)
    assert run["workflow"] == "make_text"


def test_independent_steps_both_run(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    report = run_plan(
        orch,
        for_each("s1", "count_words", id_below=6),
        for_each("s2", "tag_items", id_from=6),
    )
    assert report.ok
    assert [(s.id, s.status, s.tasks, s.succeeded) for s in report.steps.values()] == [
        ("s1", "succeeded", 5, 5),
        ("s2", "succeeded", 5, 5),
    ]
    assert report.steps["s2"].calls == 5 and report.steps["s1"].calls == 0
    assert sorted(results(domain)) == [1, 2, 3, 4, 5]
    assert ids(domain, "tags") == [6, 7, 8, 9, 10]


# ------------------------------------------------------------------ single-run steps
def test_single_run_step_gets_an_earlier_steps_output(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    report = run_plan(
        orch,
        PlanStep("s1", "make_text", {"n": 4}),
        PlanStep(
            "s2",
            "count_words",
            {"item_id": Ref("s1", ("item_id",)), "text": Ref("s1", ("text",))},
        ),
    )
    assert report.ok
    s1, s2 = report.steps["s1"], report.steps["s2"]
    assert s1.output == {"item_id": 104, "text": "w0 w1 w2 w3"}
    assert s2.output == {"item_id": 104, "words": 4}
    assert (s2.mode, s2.tasks, s2.succeeded, s2.after) == ("once", 1, 1, ["s1"])
    assert calls.script[-1] == {"item_id": 104, "text": "w0 w1 w2 w3"}
    # history like `turing exec`; no task
    history = {(r["workflow"], r["status"]) for r in domain.runs()}
    assert history == {("make_text", "succeeded"), ("count_words", "succeeded")}
    assert not tasks(domain)


def test_single_run_input_of_the_wrong_type_is_refused_before_running(
    domain: Store, calls: Calls
) -> None:
    orch = orch_for(domain, calls)
    with pytest.raises(PlanError) as caught:
        run_plan(
            orch,
            PlanStep("s1", "make_text", {"n": 4}),
            PlanStep("s2", "make_text", {"n": Ref("s1", ("text",))}),
        )
    assert any("type mismatch" in e for e in caught.value.errors)
    assert not calls.script and not domain.runs()


# --------------------------------------------------------------- tasks held by others
def test_tasks_claimed_by_another_worker_are_waited_for_and_counted(
    domain: Store, calls: Calls
) -> None:
    orch = orch_for(domain, calls)
    other = orch_for(domain, calls, worker_id="other-worker")
    other.discover_pending_tasks(["count_words"])
    held_ids = [int(r["id"]) for r in domain.tasks_for_subjects("count_words", ["6", "7"])]
    held = domain.claim("other-worker", 10, task_ids=held_ids, lease_s=600)
    assert sorted(t.subject for t in held) == ["6", "7"]

    ours_done = threading.Event()
    seen: list[StepReport] = []

    def on_event(event: str, step: StepReport) -> None:
        if event == "progress" and step.tasks and step.processed == step.tasks - 2:
            seen.append(step)
            ours_done.set()

    out: list[PlanReport] = []
    runner = threading.Thread(
        target=lambda: out.append(
            run_plan(orch, for_each("s1", "count_words", id_from=4, id_below=9), on_event=on_event)
        )
    )
    runner.start()
    try:
        assert ours_done.wait(30), "the plan never finished its own tasks"
        assert runner.is_alive()  # waiting for the other worker's two
        assert sorted(results(domain)) == [4, 5, 8]
        for task in held:  # the other worker finishes its tasks now
            done = asyncio.run(other.processor._one(task))
            assert domain.complete_many([done], "other-worker", worker="other-worker") == [
                "succeeded"
            ]
    finally:
        runner.join(30)
    assert not runner.is_alive()
    [report] = out
    s1 = report.steps["s1"]
    assert (s1.status, s1.tasks, s1.succeeded, s1.failed, s1.processed) == (
        "succeeded", 5, 5, 0, 3
    )  # fmt: skip
    assert results(domain) == {i: i for i in range(4, 9)}
    assert sorted(c["item_id"] for c in calls.script) == [4, 5, 6, 7, 8]


# ------------------------------------------------------------------------- dry runs
def test_dry_run_changes_nothing(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    # some state first: results and history from a real run, queued tasks, a sync
    run_plan(orch, for_each("s1", "count_words", id_below=3))
    orch.discover_pending_tasks(["tag_items"])
    orch.sync_contracts()
    before = dump(domain)
    assert before["turing_tasks"] and before["turing_runs"] and before["results"]
    calls.script.clear()

    report = run_plan(
        orch,
        for_each("s1", "count_words", id_from=5),
        for_each("s2", "summarize", ("s1",), id_from=5),
        for_each("s3", "tag_items", id_below=4),
        PlanStep("s4", "make_text", {"n": 2}),
        PlanStep("s5", "count_words", {"item_id": Ref("s4", ("item_id",)), "text": "a b c"}),
        dry_run=True,
    )

    assert dump(domain) == before
    assert report.dry_run is True and report.as_dict()["dry_run"] is True
    assert report.ok
    s1, s2, s3, s4, s5 = (report.steps[f"s{i}"] for i in range(1, 6))
    assert (s1.tasks, s1.succeeded) == (6, 6)  # items 5..10 would be counted
    assert (s2.tasks, s2.succeeded) == (0, 0)  # no results in range were written
    assert (s3.tasks, s3.succeeded) == (3, 3)
    assert s4.output == {"item_id": 102, "text": "w0 w1"}
    assert s5.output == {"item_id": 102, "words": 3}
    assert sorted(c["item_id"] for c in calls.script if "item_id" in c) == [5, 6, 7, 8, 9, 10, 102]


def test_dry_run_agrees_with_the_real_run_on_done_tasks(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls, counting(calls, ALL_ITEMS))
    plan = (for_each("s1", "count_words", id_below=4),)
    run_plan(orch, *plan)
    calls.script.clear()

    dry = run_plan(orch, *plan, dry_run=True).steps["s1"]
    real = run_plan(orch, *plan).steps["s1"]

    assert (real.status, real.already_done, real.processed) == ("succeeded", 3, 0)
    assert not calls.script  # the real run called nothing; the dry run should not either
    assert (dry.status, dry.already_done, dry.processed) == (
        real.status, real.already_done, real.processed
    )  # fmt: skip


# --------------------------------------------------------------------- fan-out check
def test_fan_out_over_the_limit_is_refused_before_anything_runs(
    domain: Store, calls: Calls
) -> None:
    orch = orch_for(domain, calls)
    before = dump(domain)
    plan = (
        PlanStep("s1", "make_text", {"n": 1}),
        for_each("s2", "tag_items", id_below=3),
        for_each("s3", "count_words", id_from=5),
    )
    with pytest.raises(PlanError) as caught:
        run_plan(orch, *plan, limits=PlanLimits(max_fan_out=5))
    [error] = caught.value.errors
    assert error.startswith("s3 (count_words): fans out to more than 5 tasks")
    assert dump(domain) == before  # no tasks enqueued, no history
    assert not calls.script

    report = run_plan(orch, *plan, limits=PlanLimits(max_fan_out=6))
    assert report.ok and report.steps["s3"].tasks == 6


def test_a_limit_within_the_maximum_lets_a_big_source_run(domain: Store, calls: Calls) -> None:
    orch = orch_for(domain, calls)
    step = PlanStep("s1", "count_words", {}, ForEach({}, limit=2))
    report = run_plan(orch, step, limits=PlanLimits(max_fan_out=5))
    assert report.ok and report.steps["s1"].tasks == 2
    assert results(domain) == {1: 1, 2: 2}


# ------------------------------------------------------------------ date filters
def _dated(store: Store, column_type: str) -> None:
    with store.db.tx() as tx:
        tx.sql(f"CREATE TABLE dated (item_id INTEGER PRIMARY KEY, added_at {column_type})")
        for i in range(1, 11):
            day = 14 + i  # items 1..10 added on 2026-11-15 .. 2026-11-24, 08:15 UTC
            tx.sql(
                "INSERT INTO dated (item_id, added_at) VALUES (:i, :at)",
                {"i": i, "at": f"2026-11-{day:02d}T08:15:00Z"},
            )


@pytest.mark.parametrize("column_type", ["TEXT", "TIMESTAMP"])
def test_date_filters_narrow_by_day(domain: Store, calls: Calls, column_type: str) -> None:
    """`since` includes the whole day, `before` excludes it, against ISO text and (on
    PostgreSQL) a real TIMESTAMP column."""
    if column_type == "TIMESTAMP" and domain.dialect == "sqlite":
        column_type = "TEXT"  # SQLite stores the same ISO text either way
    _dated(domain, column_type)
    source = Source(
        sql="SELECT i.item_id, i.text, d.added_at FROM items i JOIN dated d "
        "ON d.item_id = i.item_id WHERE NOT EXISTS "
        "(SELECT 1 FROM results r WHERE r.item_id = i.item_id) ORDER BY i.item_id",
        filters={
            "added_since": SourceFilter("added_at", ">=", "date"),
            "added_before": SourceFilter("added_at", "<", "date"),
        },
    )
    orch = orch_for(domain, calls, count_words(calls, source=source))
    report = run_plan(
        orch, for_each("s1", "count_words", added_since="2026-11-20", added_before="2026-11-23")
    )
    assert report.ok and report.steps["s1"].tasks == 3
    assert sorted(results(domain)) == [6, 7, 8]  # added on the 20th, 21st and 22nd

    report = run_plan(orch, for_each("s1", "count_words", added_since="2026-11-24"))
    assert report.steps["s1"].tasks == 1
    assert sorted(results(domain)) == [6, 7, 8, 10]


def test_an_output_held_for_review_is_neither_failed_nor_waited_for(
    domain: Store, calls: Calls
) -> None:
    """A plan step whose tasks a reviewer must decide finishes; the held ones are counted
    apart, not as failures (their dependants are not skipped)."""
    from turing.review import when

    held = Workflow(
        "count_words", input=ItemIn, output=counting(calls).output, subject_key="item_id",
        source=Source(sql=PENDING_ITEMS, filters=FILTERS), sink=counting(calls).sink,
        steps=[s.step for s in counting(calls).steps],
        review=when("even", lambda out, inp: out["item_id"] % 2 == 0),
    )  # fmt: skip
    orch = orch_for(domain, calls, held, summarizing(calls))
    report = run_plan(
        orch,
        for_each("s1", "count_words", id_from=1, id_below=5),
        for_each("s2", "summarize", after=("s1",), id_from=1, id_below=5),
    )
    s1, s2 = report.steps["s1"], report.steps["s2"]
    assert (s1.status, s1.tasks, s1.succeeded, s1.held, s1.failed) == ("succeeded", 4, 2, 2, 0)
    assert (s2.status, s2.tasks, s2.succeeded) == ("succeeded", 2, 2)  # items 1 and 3 written
    assert [t["status"] for t in tasks(domain, "count_words")] == [
        "succeeded", "review", "succeeded", "review"
    ]  # fmt: skip


def test_a_plan_run_is_recorded_with_each_steps_tasks(domain: Store, calls: Calls) -> None:
    """What ran is in the database: the run, its status, each step's status and the very
    tasks it took on (the dashboard draws a run's progress from them); dry runs are not."""
    from turing.store.plans import PlanStore

    calls.fail_ids = {7}
    orch = orch_for(domain, calls)
    report = run_plan(
        orch,
        for_each("s1", "count_words", id_from=6, id_below=9),
        for_each("s2", "summarize", ("s1",), id_from=6),
    )
    assert report.status == "failed" and report.run_id is not None
    run, steps = PlanStore(domain.db).run(report.run_id)  # type: ignore[misc]
    assert (run["goal"], run["status"]) == ("test goal", "failed")
    assert run["finished_at"] is not None
    by_step = {s.step: s for s in steps}
    assert (by_step["s1"].status, by_step["s1"].tasks) == ("failed", 3)
    assert "1 of 3 tasks failed" in (by_step["s1"].reason or "")
    subjects = rows(domain, "SELECT id, subject FROM turing_tasks WHERE workflow = 'count_words'")
    assert sorted(by_step["s1"].task_ids) == sorted(int(r["id"]) for r in subjects)
    counts = PlanStore(domain.db).task_counts(by_step["s1"].task_ids)
    assert counts == {"succeeded": 2, "failed": 1}
    assert (by_step["s2"].status, by_step["s2"].task_ids) == ("skipped", [])
    run_plan(orch, for_each("s1", "count_words", id_from=1), dry_run=True)
    assert [r["id"] for r in PlanStore(domain.db).runs()] == [report.run_id]
