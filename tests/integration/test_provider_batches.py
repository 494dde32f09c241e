"""Provider batches end to end on SQLite and PostgreSQL, against the simulator speaking
OpenAI's and Anthropic's batch protocols: tasks submitted (held 'submitted'), polled,
ingested through repair, validation and the guarded completion (each sink row once), cost
at the batch rate and marked as batch; re-asks into a second batch or synchronously;
per-request failures; expiry and cancel (finished ingested, the rest pending, attempts
not counted); two workers ingesting one results file at once; a submitter that died
between the provider's create and its own record."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import ItemIn, rows, scalar, text_of
from turing import (
    Executor,
    FakeModel,
    Grade,
    LLMStep,
    Orchestrator,
    Registry,
    Sink,
    Source,
    Workflow,
)
from turing.actors.base import ModelResponse, Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.batch.clients import client_for
from turing.batch.protocol import BatchClient
from turing.batch.replay import ReplayActor
from turing.batch.runner import SUBMIT_GRACE_S
from turing.errors import ActorError
from turing.limits.periods import parse_budget
from turing.limits.spending import PeriodBudgets
from turing.providers import create
from turing.sim import SimConfig, Simulator
from turing.store import Store

PENDING = (
    "SELECT item_id, text FROM items i WHERE NOT EXISTS "
    "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id) ORDER BY item_id"
)
PRICE = 2.0  # per million tokens, input and output
PROVIDERS = ["openai", "anthropic"]


class Summary(BaseModel):
    item_id: int
    summary: str


def workflow(
    prompt: str = "Summarize this item.\nitem_id: {{ item_id }}\ntext: {{ text }}",
) -> Workflow:
    return Workflow(
        "summarize",
        input=ItemIn,
        output=Summary,
        subject_key="item_id",
        source=Source(sql=PENDING),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[LLMStep("summarize", prompt=prompt, actor="model", max_reasks=2)],
    )


class Answers:
    """The simulator's answers: the item's summary; items in `bad` answer without one at
    first (a re-ask, which carries the bad answer, is answered properly); items in `broken`
    make the responder fail (the request errors: a partial failure)."""

    def __init__(self, bad: set[int] = frozenset(), broken: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.bad, self.broken = set(bad), set(broken)
        self.asked: list[tuple[int, int]] = []  # (item, messages in the request)
        self.lock = threading.Lock()

    def respond(self, model: str, messages: list[dict[str, Any]], schema: Any, rng: Any) -> Any:
        text = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "user")
        item = int(re.search(r"item_id: (\d+)", text).group(1))  # type: ignore[union-attr]
        with self.lock:
            self.asked.append((item, len(messages)))
        if item in self.broken:
            raise RuntimeError("the model fell over")
        if item in self.bad and len(messages) == 1:
            return {"item_id": item}  # no summary: breaks the contract, repair cannot help
        return {"item_id": item, "summary": f"summary of {item}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def sim_factory(answers: Answers, clock: Clock) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        sim = Simulator(SimConfig.profile("fast", **overrides), responder=answers, clock=clock)
        started.append(sim.start())
        return sim

    yield make
    for sim in started:
        sim.stop()


def actor(sim: Simulator, provider: str, **batch: Any) -> ManagedActor:
    url = sim.openai_url if provider == "openai" else sim.url
    settings = ActorSettings(
        provider,
        "gpt-4o-mini",
        name="model",
        base_url=url,
        timeout=10,
        max_retries=0,
        price_input=PRICE,
        price_output=PRICE,
        batch=batch.pop("batch", "on"),
        **batch,
    )
    return ManagedActor(create(settings), settings)


def orchestrator(
    store: Store, model: ManagedActor, wf: Workflow | None = None, **kw: Any
) -> Orchestrator:
    return Orchestrator(Registry([wf or workflow()]), Executor({"model": model}), store, **kw)


def poll(orch: Orchestrator) -> Any:
    async def run() -> Any:
        async with orch.session():
            return await orch.batcher.poll(force=True)

    return asyncio.run(run())


def statuses(store: Store) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows(store, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status"):
        out[r["status"]] = int(r["n"])
    return out


def summaries(store: Store) -> list[int]:
    return [r["item_id"] for r in rows(store, "SELECT item_id FROM summaries ORDER BY item_id")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_submit_poll_ingest_writes_each_result_once_at_the_batch_rate(
    domain: Store, sim_factory: Callable[..., Simulator], provider: str
) -> None:
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, provider))
    report = orch.process_pending_tasks()  # discovers, submits; nothing runs synchronously
    assert report.processed == 0
    assert statuses(domain) == {"submitted": 10}
    [batch] = rows(domain, "SELECT * FROM turing_batches")
    assert (batch["status"], batch["requests"], batch["provider"]) == ("submitted", 10, provider)
    custom = sorted(
        r["custom_id"] for r in rows(domain, "SELECT custom_id FROM turing_batch_items")
    )
    tasks = sorted(f"t{r['id']}-a1-r1" for r in rows(domain, "SELECT id FROM turing_tasks"))
    assert custom == tasks
    assert summaries(domain) == []

    done = poll(orch)
    assert (done.succeeded, done.failed, done.reasked, done.returned) == (10, 0, 0, 0)
    assert summaries(domain) == list(range(1, 11))
    assert statuses(domain) == {"succeeded": 10}
    assert scalar(domain, "SELECT status FROM turing_batches") == "ingested"
    calls = rows(domain, "SELECT batch_id, cost, input_tokens, output_tokens FROM turing_calls")
    assert len(calls) == 10 and {c["batch_id"] for c in calls} == {batch["id"]}
    for c in calls:  # half the actor's price
        full = (c["input_tokens"] + c["output_tokens"]) * PRICE / 1_000_000
        assert c["cost"] == pytest.approx(full * 0.5) and c["cost"] > 0
    endpoints = sim.stats()["calls_by_endpoint"]
    assert "/v1/chat/completions" not in endpoints  # no synchronous call at all
    assert sum(endpoints.values()) == 10

    again = poll(orch)  # nothing is open any more: nothing is written twice
    assert again.polled == 0 and summaries(domain) == list(range(1, 11))
    orch.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_that_break_the_contract_go_into_the_next_batch_as_re_asks(
    domain: Store, sim_factory: Callable[..., Simulator], answers: Answers, provider: str
) -> None:
    answers.bad = {2, 4, 6, 8, 10}
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, provider))
    orch.process_pending_tasks()
    first = poll(orch)
    assert (first.succeeded, first.reasked) == (5, 5)
    assert summaries(domain) == [1, 3, 5, 7, 9]
    assert statuses(domain) == {"succeeded": 5, "pending": 5}
    attempts = {
        r["attempts"]
        for r in rows(domain, "SELECT attempts FROM turing_tasks WHERE status = 'pending'")
    }
    assert attempts == {0}  # a re-ask round is the same attempt

    orch.process_pending_tasks()  # the re-asks go out as the second batch
    second = rows(domain, "SELECT id, requests FROM turing_batches ORDER BY id")[1]
    assert second["requests"] == 5
    resent = sorted(
        r["custom_id"]
        for r in rows(
            domain, f"SELECT custom_id FROM turing_batch_items WHERE batch_id = {second['id']}"
        )
    )
    assert all(c.endswith("-a1-r2") for c in resent)
    poll(orch)
    assert summaries(domain) == list(range(1, 11))
    # the re-ask carried the conversation: first ask, the bad answer, the violations
    assert sorted(n for item, n in answers.asked if item == 2) == [1, 3]
    history = rows(
        domain,
        "SELECT r.status, r.error_kind, c.number, c.batch_id FROM turing_runs r "
        "JOIN turing_calls c ON c.run_id = r.id JOIN turing_tasks t ON t.id = r.task_id "
        "WHERE t.subject = '2' ORDER BY c.id",
    )
    assert [(h["status"], h["error_kind"], h["number"]) for h in history] == [
        ("deferred", "batch_reask", 1),
        ("succeeded", None, 2),
    ]
    assert history[0]["batch_id"] != history[1]["batch_id"]
    assert scalar(domain, "SELECT COUNT(*) FROM turing_calls") == 15  # each answer once
    orch.close()


def test_re_asks_can_go_synchronously(
    domain: Store, sim_factory: Callable[..., Simulator], answers: Answers
) -> None:
    answers.bad = {3, 4}
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, "openai", batch_reask="sync"))
    orch.process_pending_tasks()
    done = poll(orch)
    assert (done.succeeded, done.reasked) == (10, 0)
    assert summaries(domain) == list(range(1, 11))
    assert sim.stats()["calls_by_endpoint"]["/v1/chat/completions"] == 2
    sync = rows(domain, "SELECT number, batch_id, cost FROM turing_calls WHERE batch_id IS NULL")
    assert [c["number"] for c in sync] == [2, 2]  # the re-asks, at the full price
    orch.close()


def test_re_asks_past_the_deadline_go_synchronously(
    domain: Store, sim_factory: Callable[..., Simulator], answers: Answers, clock: Clock
) -> None:
    answers.bad = {5}
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, "openai", batch_reask_deadline=3600.0))
    orch.batcher.clock = clock
    orch.process_pending_tasks()
    clock.now += 3601  # the answers came back late: no more waiting for batches
    assert poll(orch).reasked == 0
    assert summaries(domain) == list(range(1, 11))
    assert sim.stats()["calls_by_endpoint"]["/v1/chat/completions"] == 1
    orch.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_request_returns_its_task_by_the_retry_policy(
    domain: Store, sim_factory: Callable[..., Simulator], answers: Answers, provider: str
) -> None:
    answers.broken = {4, 9}
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, provider))
    orch.process_pending_tasks()
    done = poll(orch)
    assert (done.succeeded, done.failed) == (8, 2)
    assert summaries(domain) == [1, 2, 3, 5, 6, 7, 8, 10]
    waiting = rows(
        domain,
        "SELECT subject, status, attempts, not_before, last_error FROM turing_tasks "
        "WHERE subject IN ('4', '9')",
    )
    for t in waiting:  # a transient failure: tried again later (attempt counted)
        assert (t["status"], t["attempts"]) == ("pending", 1)
        assert t["not_before"] is not None and "batch" in t["last_error"]
    errors = rows(domain, "SELECT error, batch_id FROM turing_calls WHERE error IS NOT NULL")
    assert len(errors) == 2 and all(e["batch_id"] is not None for e in errors)
    orch.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_expired_batch_keeps_what_finished_and_returns_the_rest(
    domain: Store, sim_factory: Callable[..., Simulator], provider: str
) -> None:
    sim = sim_factory(batch_expire_fraction=0.5)
    orch = orchestrator(domain, actor(sim, provider))
    orch.process_pending_tasks()
    done = poll(orch)
    assert (done.succeeded, done.returned) == (5, 5)
    assert len(summaries(domain)) == 5
    back = rows(domain, "SELECT status, attempts FROM turing_tasks WHERE status <> 'succeeded'")
    assert back == [{"status": "pending", "attempts": 0}] * 5  # attempt not counted
    assert scalar(domain, "SELECT status FROM turing_batches") == "expired"
    orch.process_pending_tasks()  # the rest goes out again
    assert scalar(domain, "SELECT COUNT(*) FROM turing_batches WHERE status = 'submitted'") == 1
    orch.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_ingests_what_finished_and_returns_the_rest(
    domain: Store, sim_factory: Callable[..., Simulator], clock: Clock, provider: str
) -> None:
    sim = sim_factory(batch_turnaround_s=100.0)
    orch = orchestrator(domain, actor(sim, provider))
    orch.process_pending_tasks()
    assert poll(orch).finished == {}  # in progress: nothing ingested
    clock.now += 30  # 3 of the 10 requests are answered by now
    [batch_id] = [r["id"] for r in rows(domain, "SELECT id FROM turing_batches")]

    async def cancel() -> Any:
        async with orch.session():
            return await orch.batcher.cancel(batch_id)

    done = asyncio.run(cancel())
    assert (done.succeeded, done.returned, done.finished) == (3, 7, {batch_id: "cancelled"})
    assert summaries(domain) == [1, 2, 3]
    assert statuses(domain) == {"succeeded": 3, "pending": 7}
    orch.close()


def test_two_workers_ingesting_one_results_file_write_each_row_once(
    domain: Store, stores: Callable[[], Store], sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    model = actor(sim, "openai")
    orch = orchestrator(domain, model)
    orch.process_pending_tasks()
    workers = [orchestrator(stores(), model, worker_id=f"w{i}") for i in range(2)]
    for w in workers:
        w.batcher.chunk = 2  # small takes: the two interleave over the ten items
    start = threading.Barrier(2)
    reports: list[Any] = []

    def ingest(w: Orchestrator) -> None:
        start.wait()
        reports.append(poll(w))

    threads = [threading.Thread(target=ingest, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.succeeded for r in reports) == 10
    assert summaries(domain) == list(range(1, 11))
    assert statuses(domain) == {"succeeded": 10}
    assert scalar(domain, "SELECT COUNT(*) FROM turing_runs") == 10
    assert scalar(domain, "SELECT COUNT(*) FROM turing_calls") == 10
    for w in [*workers, orch]:
        w.close()


class _DiesAfterCreate:
    """A batch client whose process dies right after the provider created the batch."""

    def __init__(self, inner: BatchClient) -> None:
        self.inner = inner
        self.provider = inner.provider

    async def create(self, *args: Any) -> Any:
        await self.inner.create(*args)
        raise _Killed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Killed(BaseException):
    pass


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_batch_created_but_not_recorded_is_found_by_its_key_or_its_tasks_return(
    domain: Store, sim_factory: Callable[..., Simulator], provider: str
) -> None:
    sim = sim_factory()
    model = actor(sim, provider)
    dying = orchestrator(domain, model)
    dying.batcher._clients = lambda a: _DiesAfterCreate(client_for(a))
    with pytest.raises(_Killed):
        dying.process_pending_tasks()
    [batch] = rows(domain, "SELECT status, provider_batch_id FROM turing_batches")
    assert batch == {"status": "submitting", "provider_batch_id": None}
    assert statuses(domain) == {"submitted": 10}

    orch = orchestrator(domain, model, worker_id="next")
    assert poll(orch).finished == {}  # within the grace: the submitter may still be at it
    assert statuses(domain) == {"submitted": 10}
    orch.batcher.clock = lambda: time.time() + SUBMIT_GRACE_S + 1
    done = poll(orch)
    if provider == "openai":  # found by the key in its metadata, then ingested
        assert done.succeeded == 10 and summaries(domain) == list(range(1, 11))
    else:  # Anthropic batches carry no metadata: not found, the tasks go back
        assert done.returned == 10 and statuses(domain) == {"pending": 10}
        assert scalar(domain, "SELECT status FROM turing_batches") == "failed"
    dying.close()
    orch.close()


def test_an_answer_to_a_prompt_edited_meanwhile_is_not_written(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    model = actor(sim, "openai")
    orch = orchestrator(domain, model)
    orch.process_pending_tasks()
    edited = workflow("Summarize this item briefly.\nitem_id: {{ item_id }}\ntext: {{ text }}")
    later = orchestrator(domain, model, edited, worker_id="after-deploy")
    done = poll(later)
    assert (done.succeeded, done.returned) == (0, 10)
    assert summaries(domain) == [] and statuses(domain) == {"pending": 10}
    later.process_pending_tasks()
    poll(later)
    assert summaries(domain) == list(range(1, 11))
    orch.close()
    later.close()


def test_auto_waits_for_enough_tasks_or_for_the_oldest_to_wait_long_enough(
    domain: Store, sim_factory: Callable[..., Simulator], clock: Clock
) -> None:
    sim = sim_factory()
    model = actor(sim, "openai", batch="auto", batch_min_tasks=11, batch_max_wait=600.0)
    orch = orchestrator(domain, model)
    orch.batcher.clock = time.time
    orch.process_pending_tasks()  # 10 pending, 11 wanted, nobody waited long: no batch
    assert statuses(domain) == {"pending": 10}  # and nothing ran synchronously either
    assert rows(domain, "SELECT id FROM turing_batches") == []
    assert sim.stats()["calls"] == 0
    orch.batcher.lanes[0].settings.__dict__["batch_min_tasks"] = 10  # now there are enough
    assert orch.batcher._due(orch.batcher.lanes[0], ["summarize"])
    orch.batcher.lanes[0].settings.__dict__["batch_min_tasks"] = 11
    orch.batcher.clock = lambda: time.time() + 601  # the oldest has waited long enough
    orch.process_pending_tasks()  # submitted, and (its poll interval passed) ingested
    assert scalar(domain, "SELECT COUNT(*) FROM turing_batches") == 1
    assert statuses(domain) == {"succeeded": 10}
    assert scalar(domain, "SELECT COUNT(*) FROM turing_calls WHERE batch_id IS NULL") == 0
    orch.close()


def test_what_cannot_go_through_a_batch_runs_synchronously_and_says_why(
    store: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    two_steps = Workflow(
        "two_steps",
        input=ItemIn,
        output=Summary,
        steps=[
            LLMStep("first", prompt="{{ text }}", actor="model", output=Summary),
            LLMStep("second", prompt="{{ first }}", actor="model", after=["first"]),
        ],
    )
    graded = Workflow(
        "graded",
        input=ItemIn,
        output=Summary,
        steps=[
            LLMStep(
                "s",
                prompt="{{ text }}",
                actor="model",
                grade=Grade(actor="judge", rubric="is it a summary?"),
            )
        ],
    )
    local = Workflow(
        "local",
        input=ItemIn,
        output=Summary,
        steps=[LLMStep("s", prompt="{{ text }}", actor="local")],
    )
    ollama = ActorSettings("ollama", "qwen2.5:7b", base_url=sim.url, batch="on")
    actors = {
        "model": actor(sim, "openai"),
        "judge": FakeModel(lambda r: "{}", name="judge"),
        "local": ManagedActor(create(ollama), ollama),
    }
    orch = Orchestrator(Registry([two_steps, graded, local]), Executor(actors), store)
    assert orch.batcher.batched() == set()
    notes = "\n".join(orch.batcher.notes)
    assert "'two_steps' runs synchronously" in notes and "2 LLM steps" in notes
    assert "'graded' runs synchronously" in notes and "grade=" in notes
    assert "'local' runs synchronously" in notes and "no batch API" in notes
    orch.close()


class _DiesBeforeCreate(_DiesAfterCreate):
    async def create(self, *args: Any) -> Any:
        raise _Killed


def test_a_batch_recorded_but_never_created_returns_its_tasks_after_the_grace(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    model = actor(sim, "openai")
    dying = orchestrator(domain, model)
    dying.batcher._clients = lambda a: _DiesBeforeCreate(client_for(a))
    with pytest.raises(_Killed):
        dying.process_pending_tasks()
    assert statuses(domain) == {"submitted": 10}
    orch = orchestrator(domain, model, worker_id="next")
    orch.batcher.clock = lambda: time.time() + SUBMIT_GRACE_S + 1
    done = poll(orch)  # looked for by its key: the provider never had it
    assert (done.returned, done.finished) == (10, {1: "failed"})
    back = rows(domain, "SELECT status, attempts FROM turing_tasks")
    assert back == [{"status": "pending", "attempts": 0}] * 10
    orch.process_pending_tasks()  # asked again in a new batch, written once
    poll(orch)
    assert summaries(domain) == list(range(1, 11))
    assert sim.stats()["calls_by_endpoint"] == {"/v1/batches": 10}
    dying.close()
    orch.close()


def test_a_cascade_escalates_a_batch_answer_to_its_next_actor_synchronously(
    domain: Store, sim_factory: Callable[..., Simulator], answers: Answers
) -> None:
    answers.bad = {2, 7}

    def large(request: Any) -> ModelResponse:
        item = int(request.variables["item_id"])
        return ModelResponse(json.dumps({"item_id": item, "summary": "large"}), Usage(5, 5, 1))

    cascade = Workflow(
        "summarize",
        input=ItemIn,
        output=Summary,
        subject_key="item_id",
        source=Source(sql=PENDING),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[
            LLMStep(
                "summarize",
                prompt="Summarize.\nitem_id: {{ item_id }}",
                actor=["model", "large"],
                max_reasks=0,
            )
        ],
    )
    sim = sim_factory()
    big = FakeModel(large, name="large")
    orch = Orchestrator(
        Registry([cascade]), Executor({"model": actor(sim, "openai"), "large": big}), domain
    )
    orch.process_pending_tasks()
    done = poll(orch)
    assert (done.succeeded, done.reasked) == (10, 0)
    written = rows(domain, "SELECT item_id, summary FROM summaries WHERE summary = 'large'")
    assert sorted(r["item_id"] for r in written) == [2, 7]
    assert sorted(int(r.variables["item_id"]) for r in big.requests) == [2, 7]
    orch.close()


def test_a_run_reports_the_tasks_it_ingested(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, "anthropic", batch_poll=1e-6))
    heard: list[str] = []
    report = orch.process_pending_tasks(on_result=lambda task, _r, outcome: heard.append(outcome))
    assert (report.processed, report.succeeded) == (10, 10)  # submitted, polled, ingested
    assert heard == ["succeeded"] * 10
    assert summaries(domain) == list(range(1, 11))
    orch.close()


def test_a_refused_batch_returns_its_tasks_and_is_not_tried_again_every_round(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory(api_key="sk-the-right-one")  # and the actor sends none: 401
    orch = orchestrator(domain, actor(sim, "openai"))
    first = orch.process_pending_tasks()
    assert first.processed == 0
    [batch] = rows(domain, "SELECT status, error FROM turing_batches")
    assert batch["status"] == "failed" and "refused" in batch["error"]
    assert (
        rows(domain, "SELECT status, attempts FROM turing_tasks")
        == [{"status": "pending", "attempts": 0}] * 10
    )
    orch.process_pending_tasks()  # the next round waits before asking the provider again
    assert scalar(domain, "SELECT COUNT(*) FROM turing_batches") == 1
    orch.close()


class _Unreachable(_DiesAfterCreate):
    async def retrieve(self, batch_id: str) -> Any:
        raise ActorError("connection refused", transient=True, kind="connection")


def test_a_provider_away_while_polling_leaves_the_batch_for_the_next_poll(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory()
    orch = orchestrator(domain, actor(sim, "openai"))
    orch.process_pending_tasks()
    orch.batcher._clients = lambda a: _Unreachable(client_for(a))
    away = poll(orch)
    assert "polling failed" in away.notes[0] and away.finished == {}
    assert statuses(domain) == {"submitted": 10}
    orch.batcher._clients = client_for
    assert poll(orch).succeeded == 10 and summaries(domain) == list(range(1, 11))
    orch.close()


def test_a_batch_holds_its_quotes_in_the_period_budget_and_settles_at_its_cost(
    domain: Store, sim_factory: Callable[..., Simulator]
) -> None:
    """The part of the backlog whose quotes (at the batch rate) fit the budget goes; the
    rest waits, pending; the hold is replaced by what the answers cost once ingested."""
    sim = sim_factory()
    plain = actor(sim, "openai")
    quotes = []
    for i in range(1, 11):  # each task's request, as the executor renders it
        replay = ReplayActor(plain)
        asyncio.run(Executor({"model": replay}).run(workflow(), {"item_id": i, "text": text_of(i)}))
        assert replay.captured is not None
        quotes.append(plain.quote(replay.captured).cost * 0.5)
    budget = parse_budget("workflow:summarize", f"{3.5 * max(quotes):.12f} USD/day")
    budgets = PeriodBudgets(domain.db, [budget], holder="test")
    model = ManagedActor(plain.inner, plain.settings, budgets=budgets)
    orch = orchestrator(domain, model)
    first = orch.process_pending_tasks()
    assert first.processed == 0
    assert statuses(domain) == {"submitted": 2, "pending": 8}  # 10, then 5 did not fit
    [state] = budgets.states()
    assert state.spent == 0 and state.held == pytest.approx(sum(quotes[:2]))
    assert poll(orch).succeeded == 2
    [state] = budgets.states()
    cost = scalar(domain, "SELECT SUM(cost) FROM turing_calls")
    assert state.held == 0 and state.spent == pytest.approx(cost) and cost > 0
    assert cost <= sum(quotes[:2])  # the quote bounded what was spent
    orch.close()
