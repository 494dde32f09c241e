"""`turing.estimate` on a real backlog, both backends: queued and undiscovered tasks counted
once, history from the fake model's runs (re-asks included) read back per task."""

from __future__ import annotations

from integration.domain import orchestrator, tag_answer, tag_items
from turing import FakeModel, ModelRequest
from turing.estimate import DEFAULT_ANSWER_TOKENS, estimate
from turing.store import Store


def test_estimate_on_a_backlog_then_from_history(domain: Store) -> None:
    wf = tag_items()
    asked: dict[int, int] = {}

    def answer(request: ModelRequest) -> str:  # every odd item is re-asked once
        item = int(request.variables["item_id"])
        asked[item] = asked.get(item, 0) + 1
        return "not json" if item % 2 and asked[item] == 1 else tag_answer(request)

    orch = orchestrator(domain, wf, model=FakeModel(answer))
    orch.discover_pending_tasks()
    ex = orch.executor

    def run_estimate():  # type: ignore[no-untyped-def]
        return estimate(domain, [wf], ex.resolve, ex.fingerprint, sample=4)

    before = run_estimate()
    assert before.backlog["tag_items"].tasks == 10  # queued, not counted again as new
    [step] = before.steps
    assert step.sampled == 4 and step.calls_per_task == 1.0
    assert step.answer_per_call == DEFAULT_ANSWER_TOKENS
    assert step.cost is None  # a fake model has no prices
    report = orch.process_pending_tasks(max_tasks=4, discover=False)
    assert report.succeeded == 4
    after = run_estimate()
    [step] = after.steps
    assert after.backlog["tag_items"].tasks == 6
    # items 1..4 ran: 1 and 3 were asked twice, so 6 calls over 4 runs
    assert step.calls_per_task == 1.5 and step.history.startswith("fingerprint")
    calls = report.total("calls")
    assert calls == 6
    assert step.answer_per_call == report.total("output_tokens") / calls
