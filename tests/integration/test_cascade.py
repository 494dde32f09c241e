"""Model cascades in real runs on SQLite and PostgreSQL: items whose small-model answer
breaks the contract are answered by the large model and written once; history keeps one row
per call with the actor that made it and its cost; the large model is never asked about
items the small one answered validly. And the same through the Ollama provider against the
simulator, where the small model's answers are faulty by its own fault rate."""

from __future__ import annotations

import json

from pydantic import BaseModel

from integration.domain import ItemIn, rows
from turing import (
    Executor,
    FakeModel,
    LLMStep,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Registry,
    Sink,
    Source,
    Workflow,
)
from turing.actors.base import Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.sim import SimConfig, Simulator
from turing.store import Store

PENDING = (
    "SELECT item_id, text FROM items i WHERE NOT EXISTS "
    "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id) ORDER BY item_id"
)


class Summary(BaseModel):
    item_id: int
    summary: str


CASCADE = Workflow(
    "summarize_items",
    input=ItemIn,
    output=Summary,
    subject_key="item_id",
    source=Source(sql=PENDING),
    sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
    steps=[
        LLMStep(
            "summarize",
            prompt="Summarize this item.\nitem_id: {{ item_id }}\ntext: {{ text }}",
            actor=["small", "large"],
            max_reasks=0,
        )
    ],
)


def small(request: ModelRequest) -> ModelResponse:
    """Even items get an answer without its summary (repair cannot invent one)."""
    item = int(request.variables["item_id"])
    answer = {"item_id": item} if item % 2 == 0 else {"item_id": item, "summary": "small"}
    return ModelResponse(json.dumps(answer), Usage(10, 5, 1, 0.001))


def large(request: ModelRequest) -> ModelResponse:
    item = int(request.variables["item_id"])
    return ModelResponse(json.dumps({"item_id": item, "summary": "large"}), Usage(10, 5, 1, 0.01))


def test_invalid_small_answers_go_to_the_large_model_and_history_says_who(domain: Store) -> None:
    cheap, big = FakeModel(small, name="small"), FakeModel(large, name="large")
    orch = Orchestrator(
        Registry([CASCADE]), Executor({"small": cheap, "large": big}), domain, concurrency=4
    )
    report = orch.process_pending_tasks()
    assert (report.succeeded, report.failed) == (10, 0)
    written = rows(domain, "SELECT item_id, summary FROM summaries ORDER BY item_id")
    assert [(r["item_id"], r["summary"]) for r in written] == [
        (i, "large" if i % 2 == 0 else "small") for i in range(1, 11)
    ]
    assert sorted(int(r.variables["item_id"]) for r in big.requests) == [2, 4, 6, 8, 10]
    calls = rows(
        domain,
        "SELECT t.subject, c.number, c.actor, c.cost, c.violations FROM turing_calls c "
        "JOIN turing_runs r ON r.id = c.run_id JOIN turing_tasks t ON t.id = r.task_id "
        "ORDER BY c.id",
    )
    by_item: dict[str, list[tuple[int, str, float]]] = {}
    for c in calls:
        by_item.setdefault(c["subject"], []).append((c["number"], c["actor"], c["cost"]))
    assert by_item["2"] == [(1, "fake:small", 0.001), (2, "fake:large", 0.01)]
    assert by_item["3"] == [(1, "fake:small", 0.001)]
    assert len(calls) == 15
    assert sum(c["violations"] not in ("[]", "") for c in calls) == 5  # the small failures
    # turing stats: each level's answers count for its own actor, escalated ones thrown away
    from turing.stats import collect_stats

    quality = {k[1]: q for k, q in collect_stats(domain, since=0).quality.items()}
    small_q, large_q = quality["fake:small"], quality["fake:large"]
    assert (small_q.answers, small_q.first_valid, small_q.reasked) == (10, 5, 0)
    assert (small_q.thrown_calls, round(small_q.thrown_cost, 6)) == (5, 0.005)
    assert (large_q.answers, large_q.first_valid, large_q.thrown_calls) == (5, 5, 0)


def test_the_cascade_against_the_simulator(domain: Store) -> None:
    """Through the Ollama provider: the small model's answers always lack a field (the
    simulator's per-model faults), the large one's never; every item is written from the
    large model's answer and the simulator saw both models' calls."""
    faults = {"qwen2.5:3b": {"missing_field": 1.0}}
    with Simulator(SimConfig.profile("fast", seed=3, model_faults=faults)) as sim:

        def actor(model: str, price: float) -> ManagedActor:
            settings = ActorSettings(
                "ollama", model, base_url=sim.url, timeout=10, max_retries=0,
                price_input=price, price_output=price,
            )  # fmt: skip
            return ManagedActor(create(settings), settings)

        actors = {"small": actor("qwen2.5:3b", 0.1), "large": actor("gpt-4o", 1.0)}
        orch = Orchestrator(Registry([CASCADE]), Executor(actors), domain, concurrency=4)
        report = orch.process_pending_tasks()
        stats = sim.stats()
    # a missing item_id is restored by repair (the subject key); a missing summary is not
    escalated = stats["calls_by_model"].get("gpt-4o", 0)
    assert report.succeeded == 10 and stats["calls_by_model"]["qwen2.5:3b"] == 10
    assert 0 < escalated <= 10
    calls = rows(domain, "SELECT actor, cost FROM turing_calls ORDER BY id")
    assert len(calls) == 10 + escalated
    large_calls = [c for c in calls if c["actor"].startswith("ollama:gpt-4o")]
    small_calls = [c for c in calls if c["actor"].startswith("ollama:qwen2.5:3b")]
    assert len(large_calls) == escalated and len(small_calls) == 10
    assert all(c["cost"] > 0 for c in calls)
    assert min(c["cost"] for c in large_calls) > max(c["cost"] for c in small_calls)
