"""Issue 11, items 1-3, on SQLite and PostgreSQL: an answer about another subject is never
written to that subject; a contract's defaults are applied (an optional field left out binds
NULL in the sink, an optional input field renders in a template); a sink whose parameters
the output contract cannot supply is refused when the workflow loads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import ItemIn, orchestrator, rows
from turing import FakeModel, LLMStep, ModelRequest, Sink, Source, Workflow
from turing.errors import WorkflowDefinitionError
from turing.store import Store

PENDING = (
    "SELECT item_id, text FROM items i WHERE NOT EXISTS "
    "(SELECT 1 FROM results r WHERE r.item_id = i.item_id) ORDER BY item_id"
)


class Counted(BaseModel):
    item_id: int
    words: int


def words_workflow(**kw: Any) -> Workflow:
    return Workflow(
        "words",
        input=kw.pop("input", ItemIn),
        output=kw.pop("output", Counted),
        subject_key="item_id",
        source=Source(sql=kw.pop("source", PENDING)),
        sink=kw.pop(
            "sink", Sink.sql("INSERT INTO results (item_id, words) VALUES (:item_id, :words)")
        ),
        steps=[
            LLMStep(
                "count",
                prompt=kw.pop("prompt", "Count {{ item_id }}: {{ text }}"),
                actor="m",
                max_reasks=1,
            )
        ],
    )


def test_an_answer_about_another_subject_is_re_asked_never_written_there(domain: Store) -> None:
    """Item 1: the model answers `item_id: 999` for item 1 (and the right id when re-asked,
    except for item 2, where it insists). Nothing is written to item 999; item 2 fails."""

    def answer(request: ModelRequest) -> str:
        item = int(request.variables["item_id"])
        reasked = len(request.messages) > 1
        wrong = item == 2 or (item == 1 and not reasked)
        return f'{{"item_id": {999 if wrong else item}, "words": 1}}'

    fake = FakeModel(answer)
    with domain.db.tx() as tx:
        tx.sql("DELETE FROM items WHERE item_id > 3")
    report = orchestrator(domain, words_workflow(), model=fake).process_pending_tasks()
    assert (report.succeeded, report.failed) == (2, 1)
    written = rows(domain, "SELECT item_id FROM results ORDER BY item_id")
    assert [r["item_id"] for r in written] == [1, 3]
    [failed] = rows(domain, "SELECT subject, last_error FROM turing_tasks WHERE status='failed'")
    assert failed["subject"] == "2" and "subject" in failed["last_error"]
    reasks = [r.messages[-1].content for r in fake.requests if len(r.messages) > 1]
    assert any("must be 1, the subject of this task" in text for text in reasks)


class WithOptional(BaseModel):
    item_id: int
    words: int
    note: str | None = None  # the model may leave it out
    lang: str = "en"


class ItemWithCompany(BaseModel):
    item_id: int
    text: str
    company: str | None = None  # not a column of the source


def test_defaults_are_applied_to_outputs_and_inputs(domain: Store) -> None:
    """Item 2: an optional output field the model leaves out used to fail the SQL sink
    ("You did not supply a value for binding parameter :note"); an optional input field
    missing from the source broke the template ("undefined placeholder(s): company")."""
    with domain.db.tx() as tx:
        tx.sql("CREATE TABLE notes (item_id INTEGER, note TEXT, lang TEXT NOT NULL)")
    wf = words_workflow(
        input=ItemWithCompany,
        output=WithOptional,
        source="SELECT item_id, text FROM items i WHERE NOT EXISTS "
        "(SELECT 1 FROM notes n WHERE n.item_id = i.item_id) ORDER BY item_id",
        sink=Sink.sql("INSERT INTO notes (item_id, note, lang) VALUES (:item_id, :note, :lang)"),
        prompt="Count {{ item_id }}{% if company %} at {{ company }}{% endif %}: {{ text }}",
    )
    fake = FakeModel(lambda r: f'{{"item_id": {r.variables["item_id"]}, "words": 2}}')
    report = orchestrator(domain, wf, model=fake).process_pending_tasks()
    assert (report.succeeded, report.failed) == (10, 0), report.failures
    notes = rows(domain, "SELECT item_id, note, lang FROM notes ORDER BY item_id")
    assert notes == [{"item_id": i, "note": None, "lang": "en"} for i in range(1, 11)]
    [run] = rows(domain, "SELECT output FROM turing_runs WHERE subject = '1'")
    assert '"lang": "en"' in run["output"]  # the output as the contract means it


def test_a_sink_parameter_the_output_cannot_supply_is_refused_at_load() -> None:
    """Item 3: after a field rename every task paid for its model calls, then failed in
    the sink. Now the workflow does not load, and says which parameter and what there is."""
    with pytest.raises(WorkflowDefinitionError) as caught:
        words_workflow(
            sink=Sink.sql("INSERT INTO results (item_id, words) VALUES (:item_id, :word_count)")
        )
    message = str(caught.value)
    assert ":word_count" in message and "item_id, subject, words" in message

    class Tagged(BaseModel):
        item_id: int
        tags: list[str]

    with pytest.raises(WorkflowDefinitionError, match="for_each='labels' is not an array"):
        words_workflow(output=Tagged, sink=Sink.sql("INSERT INTO t VALUES (:value)",
                                                    for_each="labels"))  # fmt: skip
    ok = words_workflow(output=Tagged, sink=Sink.sql(
        "DELETE FROM t WHERE id = :item_id", "INSERT INTO t VALUES (:item_id, :value, :index)",
        for_each="tags"))  # fmt: skip
    assert ok.sink is not None


def test_a_retry_reads_the_subjects_current_input_from_the_source(domain: Store) -> None:
    """Item 5: a failed task kept the input it was queued with, so fixing the row did not
    help (6 attempts, all on the stale text). Now a retry re-reads the source; a subject the
    source no longer returns is dropped from the queue."""

    def answer(request: ModelRequest) -> str:
        text = str(request.variables["text"])
        if "broken" in text:
            return "I cannot count that"
        return f'{{"item_id": {request.variables["item_id"]}, "words": {len(text.split())}}}'

    with domain.db.tx() as tx:
        tx.sql("DELETE FROM items WHERE item_id > 3")
        tx.sql("UPDATE items SET text = 'broken row' WHERE item_id IN (2, 3)")
    orch = orchestrator(domain, words_workflow(), model=FakeModel(answer))
    assert orch.process_pending_tasks().failed == 2
    with domain.db.tx() as tx:  # the user fixes item 2 and deletes item 3
        tx.sql("UPDATE items SET text = 'one two three' WHERE item_id = 2")
        tx.sql("DELETE FROM items WHERE item_id = 3")
    summary = orch.retry_failed()
    assert (summary.requeued, summary.refreshed, summary.dropped) == (1, 1, ["words/3"])
    report = orch.process_pending_tasks(discover=False)
    assert (report.succeeded, report.failed) == (1, 0)
    written = rows(domain, "SELECT item_id, words FROM results ORDER BY item_id")
    assert written == [{"item_id": 1, "words": 1}, {"item_id": 2, "words": 3}]
    tasks = rows(domain, "SELECT subject, status FROM turing_tasks ORDER BY subject")
    assert tasks == [
        {"subject": "1", "status": "succeeded"},
        {"subject": "2", "status": "succeeded"},
    ]
