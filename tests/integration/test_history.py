"""History apart from the queue: runs, calls, repairs; failed runs; retries. Both backends."""

from __future__ import annotations

import json

from integration.domain import Calls, count_words, orchestrator, rows, tag_answer, tag_items
from turing import FakeModel, ModelRequest
from turing.store import Store


def test_llm_runs_record_fingerprint_calls_and_repairs(domain: Store) -> None:
    orch = orchestrator(domain, tag_items())
    assert orch.process_pending_tasks().succeeded == 10
    runs = domain.runs(workflows=["tag_items"], limit=100)
    assert len(runs) == 10
    fingerprint = orch.executor.fingerprint(orch.registry.get("tag_items"))
    assert {r["fingerprint"] for r in runs} == {fingerprint}
    assert {r["status"] for r in runs} == {"succeeded"}
    assert all(r["calls"] == 1 and r["repairs"] >= 1 for r in runs)
    assert all(r["input_tokens"] > 0 and r["output_tokens"] > 0 for r in runs)

    by_subject = {r["subject"]: r for r in runs}
    odd = domain.run(by_subject["3"]["id"])
    assert odd is not None
    assert json.loads(odd["input"]) == {"item_id": 3, "text": "w0 w1 w2"}
    assert json.loads(odd["output"]) == {"item_id": 3, "tags": ["len3", "item"]}
    [call] = odd["calls_detail"]
    assert call["raw"] == '["len3", "item"]'  # the raw response, before repair
    assert call["actor"] == "fake:fake"
    assert (call["step"], call["number"]) == ("tag", 1)
    assert call["input_tokens"] > 0 and call["output_tokens"] > 0
    messages = json.loads(call["messages"])
    assert messages[-1]["role"] == "user"
    assert "Tag item 3: w0 w1 w2" in messages[-1]["content"]
    assert [r["kind"] for r in odd["repairs_detail"]] == ["wrap_array"]

    even = domain.run(by_subject["4"]["id"])
    assert even is not None
    assert "```json" in even["calls_detail"][0]["raw"]
    assert "strip_fences" in [r["kind"] for r in even["repairs_detail"]]
    assert all(r["step"] == "tag" for r in even["repairs_detail"])


def test_reasks_are_recorded_as_calls(domain: Store) -> None:
    seen: set[int] = set()

    def answer(request: ModelRequest) -> str:
        item_id = int(request.variables["item_id"])
        if item_id == 2 and item_id not in seen:
            seen.add(item_id)
            return "I am not sure what you mean."
        return tag_answer(request)

    orch = orchestrator(domain, tag_items(), model=FakeModel(answer))
    assert orch.process_pending_tasks().succeeded == 10
    [run] = [r for r in domain.runs(limit=100) if r["subject"] == "2"]
    assert (run["calls"], run["reasks"]) == (2, 1)
    detail = domain.run(run["id"])
    assert detail is not None
    first, second = detail["calls_detail"]
    assert (first["number"], second["number"]) == (1, 2)
    assert first["raw"] == "I am not sure what you mean."
    assert json.loads(first["violations"])  # why it was re-asked
    assert "did not satisfy" in json.loads(second["messages"])[-1]["content"]


def test_failed_runs_are_listed_and_retry_by_id_succeeds(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {2, 7}
    orch = orchestrator(domain, count_words(calls))
    assert orch.process_pending_tasks().failed == 2
    failed = domain.runs(failed_only=True)
    assert sorted(r["subject"] for r in failed) == ["2", "7"]
    assert {r["error_kind"] for r in failed} == {"script_crash"}
    assert len(domain.runs(limit=100)) == 10
    assert domain.runs(workflows=["nope"]) == []

    calls.fail_ids = set()  # the cause is gone
    task_id = next(r["task_id"] for r in failed if r["subject"] == "2")
    assert domain.retry(task_id) is True
    assert domain.retry(task_id) is False  # already pending
    row = domain.task(task_id)
    assert row is not None and row["status"] == "pending"

    report = orch.process_pending_tasks()
    assert (report.processed, report.succeeded) == (1, 1)
    row = domain.task(task_id)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    assert domain.queue_counts() == {"count_words": {"failed": 1, "succeeded": 9}}
    # history keeps both attempts of subject 2
    statuses = sorted(r["status"] for r in domain.runs(limit=100) if r["subject"] == "2")
    assert statuses == ["failed", "succeeded"]


def test_retry_failed_requeues_all_failed(domain: Store, calls: Calls) -> None:
    calls.fail_ids = {1, 5, 9}
    orch = orchestrator(domain, count_words(calls), tag_items())
    assert orch.process_pending_tasks().failed == 3
    assert domain.retry_failed(["tag_items"]) == 0
    calls.fail_ids = set()
    assert domain.retry_failed() == 3
    assert domain.retry_failed() == 0
    assert domain.queue_counts()["count_words"] == {"pending": 3, "succeeded": 7}
    report = orch.process_pending_tasks()
    assert report.succeeded == 3
    assert domain.queue_counts()["count_words"] == {"succeeded": 10}
    got = rows(domain, "SELECT COUNT(*) AS n FROM results")
    assert got == [{"n": 10}]


def test_retry_of_unknown_or_succeeded_task_is_refused(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    orch.process_pending_tasks(max_tasks=1)
    [run] = domain.runs()
    assert domain.retry(run["task_id"]) is False
    assert domain.retry(999_999) is False


def test_execute_workflow_records_a_run_without_task(domain: Store, calls: Calls) -> None:
    orch = orchestrator(domain, count_words(calls))
    result = orch.execute_workflow("count_words", {"item_id": 42, "text": "a b c"})
    assert result.ok and result.output == {"item_id": 42, "words": 3}
    [run] = domain.runs()
    assert (run["task_id"], run["status"]) == (None, "succeeded")
    assert domain.queue_counts() == {}
    orch.execute_workflow("count_words", {"item_id": 43, "text": "a"}, dry_run=True)
    assert len(domain.runs()) == 1  # dry runs are not recorded
