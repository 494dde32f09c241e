"""Prometheus metrics on fakes: counters and histograms after runs of the fake model, bounded
labels, a registry per `Metrics`, scrape-time queue counts read at most once per TTL (and
kept when the database blinks), circuit states, and the error naming the extra."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from turing.actors.base import ModelResponse, Usage
from turing.actors.breaker import Breakers
from turing.actors.fake import FakeModel
from turing.errors import ActorError, ConfigError, StoreError
from turing.executor import Executor
from turing.observe import Metrics
from turing.result import RunResult
from turing.steps import LLMStep
from turing.store.store import TaskRow
from turing.workflow import Workflow


class PostingIn(BaseModel):
    posting_id: int
    text: str


class Skills(BaseModel):
    posting_id: int
    skills: list[str]


WF = Workflow(
    "talent",
    input=PostingIn,
    output=Skills,
    steps=[LLMStep("extract", "Skills in: {{ text }}")],
    subject_key="posting_id",
)
INPUT = {"posting_id": 7, "text": "Python and SQL"}
GOOD = {"posting_id": 7, "skills": ["python"]}


def answer(value: Any, inp: int, out: int, cost: float = 0.0) -> ModelResponse:
    text = value if isinstance(value, str) else json.dumps(value)
    return ModelResponse(text, Usage(inp, out, 1, cost))


def run(*answers: Any) -> RunResult:
    return Executor({"default": FakeModel(list(answers), name="m")}).run_sync(WF, INPUT)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def finished(metrics: Metrics, outcome: str) -> float:
    return value(metrics, "turing_tasks_finished_total", workflow="talent", outcome=outcome)


def task(subject: str, task_id: int = 1) -> TaskRow:
    return TaskRow(task_id, "talent", 1, subject, INPUT, 1, 0)


def test_counters_and_histograms_after_runs_of_the_fake_model() -> None:
    metrics = Metrics()
    plain = run(answer(GOOD, 100, 20, 0.5))
    fenced = run(answer("```json\n" + json.dumps(GOOD) + "\n```", 10, 5))
    reasked = run(answer({"posting_id": 7}, 30, 3), answer(GOOD, 40, 4))
    failed = run(ActorError("refused", kind="connection"))
    for result, outcome in [
        (plain, "succeeded"), (fenced, "succeeded"), (reasked, "succeeded"), (failed, "failed")
    ]:  # fmt: skip
        metrics.finished(task("7"), result, outcome)

    actor = "fake:m"
    assert finished(metrics, "succeeded") == 3
    assert finished(metrics, "failed") == 1
    assert value(metrics, "turing_task_duration_seconds_count", workflow="talent") == 4
    assert value(metrics, "turing_model_calls_total", actor=actor, outcome="ok") == 4
    assert value(metrics, "turing_model_calls_total", actor=actor, outcome="error") == 1
    assert value(metrics, "turing_model_call_duration_seconds_count", actor=actor) == 5
    assert value(metrics, "turing_model_input_tokens_total", actor=actor) == 180
    assert value(metrics, "turing_model_output_tokens_total", actor=actor) == 32
    assert value(metrics, "turing_model_cost_total", actor=actor) == 0.5
    assert value(metrics, "turing_reasks_total", workflow="talent") == 1
    kinds = {r.kind for _, r in fenced.repairs}
    assert kinds
    for kind in kinds:
        assert value(metrics, "turing_repairs_total", workflow="talent", kind=kind) == 1


def test_cached_answers_count_apart_and_stay_out_of_the_latency_histogram() -> None:
    metrics = Metrics()
    cached = ModelResponse(json.dumps(GOOD), Usage(cached=1))
    metrics.finished(None, run(cached), "succeeded")
    assert value(metrics, "turing_model_calls_total", actor="fake:m", outcome="cached") == 1
    assert value(metrics, "turing_model_calls_total", actor="fake:m", outcome="ok") == 0
    assert value(metrics, "turing_model_call_duration_seconds_count", actor="fake:m") == 0


def series(metrics: Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in metrics.registry.collect()
        for s in family.samples
    }


def test_a_thousand_subjects_add_no_series() -> None:
    """Labels never carry a subject or task id: the series after one task are the series
    after a thousand distinct ones."""
    metrics = Metrics()
    result = run(answer(GOOD, 1, 1))
    metrics.finished(task("subject-0", 0), result, "succeeded")
    before = series(metrics)
    for i in range(1, 1000):
        metrics.finished(task(f"subject-{i}", i), result, "succeeded")
    after = series(metrics)
    assert after == before
    labels = {v for _, pairs in after for _, v in pairs}
    assert not any(v.startswith("subject-") for v in labels)
    assert finished(metrics, "succeeded") == 1000


def test_an_actor_label_leaves_the_server_url_out() -> None:
    metrics = Metrics()

    class Remote(FakeModel):
        @property
        def identity(self) -> str:
            return "openai:gpt-4o-mini@https://user:secret@example.com/v1"

    result = Executor({"default": Remote([answer(GOOD, 1, 1)])}).run_sync(WF, INPUT)
    metrics.finished(None, result, "succeeded")
    text = metrics.render()[0].decode()
    assert 'actor="openai:gpt-4o-mini"' in text
    assert "secret" not in text and "example.com" not in text


def test_each_metrics_has_its_own_registry_or_the_one_given() -> None:
    global_before = set(REGISTRY._names_to_collectors)
    first, second = Metrics(), Metrics()  # would raise "Duplicated timeseries" if shared
    assert first.registry is not second.registry
    assert set(REGISTRY._names_to_collectors) == global_before
    app_registry = CollectorRegistry()
    mine = Metrics(app_registry)
    mine.finished(None, run(answer(GOOD, 1, 1)), "succeeded")
    assert (
        app_registry.get_sample_value(
            "turing_tasks_finished_total", {"workflow": "talent", "outcome": "succeeded"}
        )
        == 1
    )


class CountingStore:
    """A store whose queue counts are scripted; counts its queries; may fail."""

    def __init__(self, counts: dict[str, dict[str, int]]) -> None:
        self.counts = counts
        self.queries = 0
        self.fail = False

    def queue_counts(self) -> dict[str, dict[str, int]]:
        self.queries += 1
        if self.fail:
            raise StoreError("connection refused")
        return self.counts


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_queue_depth_and_review_backlog_are_read_at_scrape_time_once_per_ttl() -> None:
    clock = Clock()
    store = CountingStore({"talent": {"pending": 3, "review": 2}, "other": {"succeeded": 5}})
    metrics = Metrics(queue_ttl_s=2.0, clock=clock)
    metrics.watch(store)  # type: ignore[arg-type]
    assert store.queries == 0  # registering reads nothing
    for _ in range(10):
        got = scrape(metrics)
    assert store.queries == 1
    assert got[("turing_queue_tasks", (("status", "pending"), ("workflow", "talent")))] == 3
    assert got[("turing_queue_tasks", (("status", "succeeded"), ("workflow", "other")))] == 5
    assert got[("turing_review_backlog", (("workflow", "talent"),))] == 2
    assert got[("turing_review_backlog", (("workflow", "other"),))] == 0

    store.counts = {"talent": {"pending": 1}}
    clock.now += 2.0
    got = scrape(metrics)
    assert store.queries == 2
    assert got[("turing_queue_tasks", (("status", "pending"), ("workflow", "talent")))] == 1
    assert ("turing_queue_tasks", (("status", "review"), ("workflow", "talent"))) not in got


def test_a_failing_queue_read_serves_the_last_counts_and_counts_the_error() -> None:
    clock = Clock()
    store = CountingStore({"talent": {"pending": 4}})
    metrics = Metrics(clock=clock)
    metrics.watch(store)  # type: ignore[arg-type]
    scrape(metrics)
    store.fail = True
    clock.now += 10
    got = scrape(metrics)  # no exception: a scrape never fails because the database blinked
    assert got[("turing_queue_tasks", (("status", "pending"), ("workflow", "talent")))] == 4
    assert got[("turing_queue_read_errors_total", ())] == 1


def test_circuit_breaker_state_per_host() -> None:
    clock = Clock()
    breakers = Breakers(threshold=1, cooldown_s=30, clock=clock)
    up = breakers.get("http://up:11434")
    down = breakers.get("http://down:11434")
    up.reached(up.enter())
    down.failed(down.enter(), ActorError("refused", kind="connection"))
    with pytest.raises(ActorError):
        down.enter()
    metrics = Metrics()
    metrics.watch(breakers=breakers)
    got = scrape(metrics)
    state = "turing_circuit_breaker_state"
    assert got[(state, (("host", "up:11434"), ("state", "closed")))] == 1
    assert got[(state, (("host", "up:11434"), ("state", "open")))] == 0
    assert got[(state, (("host", "down:11434"), ("state", "open")))] == 1
    assert got[(state, (("host", "down:11434"), ("state", "closed")))] == 0
    assert got[("turing_circuit_breaker_refused_total", (("host", "down:11434"),))] == 1
    clock.now += 30
    assert scrape(metrics)[(state, (("host", "down:11434"), ("state", "half-open")))] == 1


def test_reclaimed_leases_are_counted() -> None:
    metrics = Metrics()
    metrics.reclaimed(3)
    assert value(metrics, "turing_leases_reclaimed_total") == 3


def test_names_follow_prometheus_conventions() -> None:
    metrics = Metrics()
    metrics.watch(CountingStore({"talent": {"pending": 1}}), Breakers())  # type: ignore[arg-type]
    metrics.finished(None, run(answer(GOOD, 1, 1)), "succeeded")
    metrics.reclaimed(1)
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        assert family.name.startswith("turing_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")
        for s in family.samples:
            assert set(s.labels) <= {"workflow", "actor", "outcome", "kind", "host", "status",
                                     "state", "le"}  # fmt: skip


def test_without_prometheus_client_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError, match=r"turing\[metrics\]"):
        Metrics()


def test_an_unobserved_executor_calls_the_actor_itself() -> None:
    """The disabled path adds nothing to a call: the resolver hands out the actor as is."""
    fake = FakeModel([answer(GOOD, 1, 1)])
    assert Executor({"default": fake}).resolve("default") is fake
    assert Executor({"default": fake}, observer=Metrics()).resolve("default") is fake
