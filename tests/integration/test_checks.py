"""Checks in real runs on SQLite and PostgreSQL: a model's answer that quotes what the input
does not say is sent back and never written; a flagged check lets the answer through and is
recorded on the call; a script's output that fails a check fails the run."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from integration.domain import ItemIn, orchestrator, rows
from turing import FakeModel, LLMStep, ModelRequest, ScriptStep, Sink, Source, Workflow
from turing.checks import grounded, length
from turing.store import Store

PENDING = (
    "SELECT item_id, text FROM items i WHERE NOT EXISTS "
    "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id) ORDER BY item_id"
)


class Quoted(BaseModel):
    item_id: int
    quote: str


def quoting(checks: list[Any], steps: list[Any] | None = None) -> Workflow:
    return Workflow(
        "quote_items",
        input=ItemIn,
        output=Quoted,
        subject_key="item_id",
        source=Source(sql=PENDING),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :quote)"),
        steps=steps
        or [
            LLMStep("quote", prompt="Quote item {{ item_id }}: {{ text }}", actor="m", max_reasks=1)
        ],
        checks=checks,
    )


def answer(request: ModelRequest) -> str:
    """Items 1-3 invent a quote first (grounded when re-asked, except item 3: always)."""
    item = int(request.variables["item_id"])
    reasked = len(request.messages) > 1
    text = str(request.variables["text"])
    invented = item == 3 or (item <= 2 and not reasked)
    quote = "ten years of Kubernetes" if invented else text.split(maxsplit=1)[0]
    return json.dumps({"item_id": item, "quote": quote})


def test_an_ungrounded_quote_is_re_asked_and_never_written(domain: Store) -> None:
    fake = FakeModel(answer)
    wf = quoting([grounded("quote", within="text")])
    report = orchestrator(domain, wf, model=fake).process_pending_tasks()
    assert (report.succeeded, report.failed) == (9, 1)
    written = rows(domain, "SELECT item_id, summary FROM summaries ORDER BY item_id")
    assert [r["item_id"] for r in written] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert all("Kubernetes" not in r["summary"] for r in written)
    [failed] = rows(domain, "SELECT subject, last_error FROM turing_tasks WHERE status='failed'")
    assert failed["subject"] == "3" and "does not occur in text" in failed["last_error"]
    reasks = [r.messages[-1].content for r in fake.requests if len(r.messages) > 1]
    assert any("check:grounded:quote" in text for text in reasks)
    calls = rows(domain, "SELECT violations FROM turing_calls")
    flagged = [c for c in calls if "check:grounded:quote" in c["violations"]]
    assert len(flagged) == 4  # items 1 and 2 once, item 3 twice


def test_a_flagged_check_is_recorded_and_the_answer_kept(domain: Store) -> None:
    wf = quoting([grounded("quote", within="text", on_fail="flag")])
    report = orchestrator(domain, wf, model=FakeModel(answer)).process_pending_tasks()
    assert (report.succeeded, report.failed) == (10, 0)
    calls = rows(domain, "SELECT violations FROM turing_calls")
    assert sum("check:grounded:quote" in c["violations"] for c in calls) == 3


def test_a_scripts_output_that_fails_a_check_fails_the_run(domain: Store) -> None:
    step = ScriptStep("quote", run=lambda data: {"item_id": data["item_id"], "quote": "x" * 9})
    wf = quoting([length("quote", high=5)], steps=[step])
    report = orchestrator(domain, wf).process_pending_tasks()
    assert report.failed == 10 and report.failures == {"output_invalid": 10}
    assert rows(domain, "SELECT COUNT(*) AS n FROM summaries") == [{"n": 0}]


def test_turing_stats_reports_answer_quality(domain: Store) -> None:
    """Issue 15's quality figures: first-answer valid rate, re-ask rate, repair rate, check
    failures by check, and what thrown-away answers cost, per workflow, actor, fingerprint."""
    from turing.stats import collect_stats

    wf = quoting([grounded("quote", within="text")])
    orchestrator(domain, wf, model=FakeModel(answer)).process_pending_tasks()
    stats = collect_stats(domain, since=0)
    [(key, q)] = list(stats.quality.items())
    assert key[:2] == ("quote_items", "fake:fake") and key[2]  # the run's fingerprint
    assert (q.answers, q.runs, q.calls) == (10, 10, 13)
    assert q.first_valid == 10  # every first answer had the right shape ...
    assert q.reasked == 3  # ... but three invented their quote
    assert q.check_failures == {"grounded:quote": 4}
    assert q.thrown_calls == 4  # items 1 and 2's first answers, both of item 3's
    assert q.thrown_tokens > 0
    figures = stats.as_dict()["quality"][0]
    assert figures["reask_rate"] == 0.3 and figures["check_failure_rate"] == {
        "grounded:quote": round(4 / 13, 4)
    }
