"""The review gate on SQLite and PostgreSQL: an output that meets the review condition is
held (stored, sink not run, never claimed again), and a reviewer's decision writes it once:
approve (sink in the same transaction), edit (validated first), reject, or re-ask with the
comment. Two reviewers approving at once write once; a sink that fails leaves it held."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import ItemIn, orchestrator, rows, scalar
from turing import FakeModel, LLMStep, ModelRequest, Sink, Source, Workflow
from turing.checks import custom
from turing.ops import OperationError, Operations
from turing.review import below
from turing.store import Store

PENDING = (
    "SELECT item_id, text FROM items i WHERE NOT EXISTS "
    "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id) ORDER BY item_id"
)


class Summary(BaseModel):
    item_id: int
    summary: str
    confidence: float


def summarising(**kw: Any) -> Workflow:
    kw.setdefault("review", below("confidence", 0.5))
    return Workflow(
        "summarise",
        input=ItemIn,
        output=Summary,
        subject_key="item_id",
        source=Source(sql=PENDING),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[LLMStep("sum", prompt="Summarise {{ item_id }}: {{ text }}", actor="m")],
        **kw,
    )


def answer(request: ModelRequest) -> str:
    """Odd items are answered with low confidence, unless a reviewer sent them back."""
    item = int(request.variables["item_id"])
    reviewed = any("reviewer" in m.content for m in request.messages if m.role == "user")
    confidence = 0.9 if item % 2 == 0 or reviewed else 0.2
    return json.dumps({"item_id": item, "summary": f"item {item}", "confidence": confidence})


def held(store: Store) -> list[int]:
    found = rows(store, "SELECT subject FROM turing_tasks WHERE status = 'review'")
    return sorted(int(r["subject"]) for r in found)


def written(store: Store) -> list[int]:
    return [r["item_id"] for r in rows(store, "SELECT item_id FROM summaries ORDER BY item_id")]


def task_of(store: Store, item: int) -> int:
    return int(scalar(store, f"SELECT id FROM turing_tasks WHERE subject = '{item}'"))


def run_once(store: Store, model: FakeModel | None = None, **kw: Any) -> Any:
    wf = summarising(**kw)
    orch = orchestrator(store, wf, model=model or FakeModel(answer))
    return orch, orch.process_pending_tasks()


def test_an_output_meeting_the_condition_is_held_not_written(domain: Store) -> None:
    orch, report = run_once(domain)
    assert (report.succeeded, report.review, report.failed) == (5, 5, 0)
    assert written(domain) == [2, 4, 6, 8, 10]
    assert held(domain) == [1, 3, 5, 7, 9]
    item = Operations(orch, "alice").review(task_of(domain, 3))
    assert item.output == {"item_id": 3, "summary": "item 3", "confidence": 0.2}
    assert "confidence = 0.2 < 0.5" in item.reason and item.input["item_id"] == 3
    assert domain.queue_overview().review == 5
    runs = rows(domain, "SELECT status FROM turing_runs WHERE subject = '3'")
    assert [r["status"] for r in runs] == ["review"]


def test_a_held_task_is_never_claimed_again(domain: Store) -> None:
    _, first = run_once(domain)
    assert first.review == 5
    fake = FakeModel(answer)
    _, second = run_once(domain, fake)  # discovery sees items 1,3,5...: still unwritten
    assert second.processed == 0 and fake.requests == []
    with domain.db.tx() as tx:  # even with a lease long expired, a held task is not running
        tx.sql("UPDATE turing_tasks SET lease_owner = 'gone', lease_expires_at = 0")
    assert domain.claim("another-worker", 10, lease_s=30) == []
    assert held(domain) == [1, 3, 5, 7, 9]
    assert scalar(domain, "SELECT COUNT(*) AS n FROM turing_tasks") == 10


def test_approve_runs_the_sink_once_and_records_who(domain: Store) -> None:
    orch, _ = run_once(domain)
    ops = Operations(orch, "alice")
    task = task_of(domain, 3)
    assert ops.approve(task, comment="looks right") is True
    assert 3 in written(domain) and 3 not in held(domain)
    assert scalar(domain, f"SELECT status FROM turing_tasks WHERE id = {task}") == "succeeded"
    with pytest.raises(OperationError, match="not held for review"):
        ops.approve(task)
    [action] = ops.actions(task_id=task)
    assert (action["who"], action["action"]) == ("alice", "review.approve")
    assert json.loads(action["detail"]) == {"comment": "looks right"}


def test_two_reviewers_approving_at_once_write_once(
    domain: Store, stores: Callable[[], Store]
) -> None:
    orch, _ = run_once(domain)
    wf = orch.registry.get("summarise")
    task = task_of(domain, 5)
    barrier = threading.Barrier(2)
    results: list[bool | str] = []

    def review(name: str) -> None:
        ops = Operations(orchestrator(stores(), wf), name)
        barrier.wait()
        try:
            results.append(ops.approve(task))
        except OperationError as exc:  # read after the other's commit: not held any more
            results.append(str(exc))

    threads = [threading.Thread(target=review, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1, results
    assert written(domain).count(5) == 1
    approvals = rows(domain, "SELECT who FROM turing_audit WHERE action = 'review.approve'")
    assert len(approvals) == 1


def test_an_edit_is_validated_before_it_is_written(domain: Store) -> None:
    orch, _ = run_once(domain)
    ops = Operations(orch, "alice")
    task = task_of(domain, 7)
    with pytest.raises(OperationError, match="breaks the contract"):
        ops.approve(task, edited={"item_id": 7, "summary": 42})
    assert 7 in held(domain) and 7 not in written(domain)
    edit = {"item_id": 7, "summary": "fixed by alice", "confidence": 1.0}
    assert ops.approve(task, edited=edit)
    text = scalar(domain, "SELECT summary FROM summaries WHERE item_id = 7")
    assert text == "fixed by alice"
    detail = json.loads(ops.actions(task_id=task)[0]["detail"])
    assert detail["before"]["summary"] == "item 7" and detail["after"] == edit


def test_a_sink_that_fails_on_approve_leaves_the_task_held(domain: Store) -> None:
    orch, _ = run_once(domain)
    ops = Operations(orch, "alice")
    task = task_of(domain, 9)
    with domain.db.tx() as tx:
        tx.sql("ALTER TABLE summaries RENAME TO summaries_away")
    with pytest.raises(OperationError, match="the sink failed, the task stays held"):
        ops.approve(task)
    with domain.db.tx() as tx:
        tx.sql("ALTER TABLE summaries_away RENAME TO summaries")
    assert 9 in held(domain) and ops.actions(task_id=task) == []
    assert ops.approve(task) and 9 in written(domain)


def test_reject_fails_the_task_with_the_reason(domain: Store) -> None:
    orch, _ = run_once(domain)
    ops = Operations(orch, "bob")
    task = task_of(domain, 1)
    with pytest.raises(OperationError, match="say why"):
        ops.reject(task, " ")
    assert ops.reject(task, "summary of the wrong item")
    row = rows(domain, f"SELECT status, last_error FROM turing_tasks WHERE id = {task}")[0]
    assert row["status"] == "failed"
    assert row["last_error"] == "review: rejected by bob: summary of the wrong item"
    assert 1 not in written(domain)


def test_a_reask_sends_the_comment_and_the_held_answer_to_the_model(domain: Store) -> None:
    orch, _ = run_once(domain)
    task = task_of(domain, 3)
    assert Operations(orch, "bob").reject(task, "too vague", reask=True)
    assert scalar(domain, f"SELECT status FROM turing_tasks WHERE id = {task}") == "pending"
    fake = FakeModel(answer)
    _, report = run_once(domain, fake)
    assert (report.succeeded, report.review) == (1, 0)
    [request] = fake.requests
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "user"]
    assert json.loads(request.messages[1].content)["summary"] == "item 3"
    assert "too vague" in request.messages[2].content
    assert 3 in written(domain)
    assert scalar(domain, f"SELECT feedback FROM turing_tasks WHERE id = {task}") is None


def test_cancel_takes_waiting_tasks_only(domain: Store) -> None:
    orch, _ = run_once(domain)
    ops = Operations(orch, "carol")
    held_task, done_task = task_of(domain, 1), task_of(domain, 2)
    result = ops.cancel([held_task, done_task, 99999], reason="duplicates")
    assert result.done == [held_task]
    assert set(result.skipped) == {done_task, 99999}
    assert "succeeded" in result.skipped[done_task]
    row = rows(domain, f"SELECT status, last_error FROM turing_tasks WHERE id = {held_task}")[0]
    assert (row["status"], row["last_error"]) == ("failed", "cancelled by carol: duplicates")
    assert ops.reviews() and held_task not in [i.task_id for i in ops.reviews()]


def test_a_paused_workflow_is_not_claimed_until_resumed(domain: Store) -> None:
    wf = summarising(review=())
    orch = orchestrator(domain, wf, model=FakeModel(answer))
    ops = Operations(orch, "dave")
    assert ops.pause("summarise", reason="prompt under revision")
    assert not ops.pause("summarise")  # paused already
    report = orch.process_pending_tasks()
    assert report.processed == 0 and written(domain) == []
    assert domain.queue_overview().pending == 10
    assert [r["workflow"] for r in ops.paused()] == ["summarise"]
    assert ops.resume("summarise")
    assert orch.process_pending_tasks().succeeded == 10
    actions = [a["action"] for a in ops.actions()]
    assert actions == ["resume", "pause"]


def test_a_check_can_hold_for_review(domain: Store) -> None:
    short = custom(
        "long_enough",
        lambda out, inp: [] if int(out["item_id"]) > 3 else ["too short to trust"],
        on_fail="review",
    )
    _, report = run_once(domain, review=(), checks=[short])
    assert (report.succeeded, report.review) == (7, 3)
    assert held(domain) == [1, 2, 3]
    reason = scalar(domain, "SELECT reason FROM turing_reviews WHERE subject = '2'")
    assert reason == "check long_enough: too short to trust"


def test_requeue_runs_a_finished_task_again(domain: Store) -> None:
    orch, _ = run_once(domain, review=())
    ops = Operations(orch, "erin")
    task = task_of(domain, 4)
    with domain.db.tx() as tx:
        tx.sql("DELETE FROM summaries WHERE item_id = 4")
        tx.sql("UPDATE items SET text = 'changed text' WHERE item_id = 4")
    assert ops.requeue([task]).done == [task]
    row = rows(domain, f"SELECT status, input FROM turing_tasks WHERE id = {task}")[0]
    assert row["status"] == "pending" and json.loads(row["input"])["text"] == "changed text"
    assert ops.requeue([task]).skipped == {task: "pending: only finished tasks"}
    assert orch.process_pending_tasks().succeeded == 1 and 4 in written(domain)
