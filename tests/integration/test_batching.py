"""Model-affinity batching against the LLM simulator (one GPU holding one model, swaps cost),
through the Orchestrator on a real database: fewer swaps than naive per-item order, and
fewer than a first-come-first-served host limit when arrivals interleave models.

Only swap counts (the simulator's `/sim/stats`) are asserted, never durations; the
simulator's time is scaled down (call 2 ms, swap 20 ms) so this takes a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from integration.conftest import Backend
from integration.onegpu import A, B, ItemIn, N, actors, one_gpu
from turing import Executor, LLMStep, Orchestrator, Project, Registry, Sink, Source, Workflow
from turing.actors.affinity import HostScheduler
from turing.sim import Simulator
from turing.store import Store


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    yield from one_gpu()


class Label(BaseModel):
    item_id: int
    label: str


class Summary(BaseModel):
    item_id: int
    summary: str


TABLES = (
    "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
    "CREATE TABLE summaries (item_id INTEGER PRIMARY KEY, summary TEXT NOT NULL)",
    "CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)",
)

TWO_STEPS = Workflow(
    "label_and_summarize",
    input=ItemIn,
    output=Summary,
    subject_key="item_id",
    source=Source(
        sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
        "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id) ORDER BY item_id"
    ),
    sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
    steps=[
        LLMStep(
            "label", prompt="item_id: {{ item_id }}\ntext: {{ text }}", actor="a", output=Label
        ),
        LLMStep(
            "summary", prompt="item_id: {{ label.item_id }}\nlabel: {{ label.label }}", actor="b"
        ),
    ],
)


def one_step(name: str, actor: str, table: str, out: type[BaseModel], field: str) -> Workflow:
    return Workflow(
        name,
        input=ItemIn,
        output=out,
        subject_key="item_id",
        sink=Sink.sql(f"INSERT INTO {table} (item_id, {field}) VALUES (:item_id, :{field})"),
        steps=[LLMStep("ask", prompt="item_id: {{ item_id }}\ntext: {{ text }}", actor=actor)],
    )


LABEL = one_step("label_items", "a", "labels", Label, "label")
SUMMARIZE = one_step("summarize_items", "b", "summaries", Summary, "summary")


def fresh(backend: Backend, which: str) -> Store:
    store = backend.store(which)
    with store.db.tx() as tx:
        for ddl in TABLES:
            tx.sql(ddl)
        for i in range(1, N + 1):
            tx.sql("INSERT INTO items (item_id, text) VALUES (:i, :t)", {"i": i, "t": f"item {i}"})
    return store


def swaps_for(
    sim: Simulator,
    store: Store,
    workflows: list[Workflow],
    host: HostScheduler | None,
    *,
    concurrency: int,
    discover: bool = True,
) -> int:
    orch = Orchestrator(
        Registry(workflows), Executor(actors(sim, host)), store, concurrency=concurrency
    )
    sim.reset()
    report = orch.process_pending_tasks(discover=discover)
    assert report.failed == 0 and report.succeeded == N * len(workflows), report.as_dict()
    swaps: int = sim.stats()["swaps"]
    return swaps


def test_stage_wise_batching_swaps_twice_where_naive_order_swaps_every_call(
    backend: Backend, sim: Simulator
) -> None:
    naive = fresh(backend, "naive")
    batched = fresh(backend, "batched")
    try:
        assert swaps_for(sim, naive, [TWO_STEPS], None, concurrency=1) == 2 * N
        host = HostScheduler(models_resident=1, max_concurrency=1)
        assert swaps_for(sim, batched, [TWO_STEPS], host, concurrency=N) == 2
        assert host.switches == 2 and host.peak_in_progress == 1 and host.started == 2 * N
        with batched.db.read() as tx:
            rows = tx.sql("SELECT item_id FROM summaries ORDER BY item_id")
        assert [r["item_id"] for r in rows] == list(range(1, N + 1))
    finally:
        naive.close()
        batched.close()


def test_interleaved_workflows_are_grouped_where_first_come_first_served_swaps(
    backend: Backend, sim: Simulator
) -> None:
    """Tasks of two one-step workflows on two models, queued alternately, all in flight."""
    fifo_store = fresh(backend, "fifo")
    affinity_store = fresh(backend, "affinity")
    try:
        for store in (fifo_store, affinity_store):
            for i in range(1, N + 1):
                item = (str(i), {"item_id": i, "text": f"item {i}"})
                store.enqueue(LABEL.name, LABEL.version, [item])
                store.enqueue(SUMMARIZE.name, SUMMARIZE.version, [item])
        fifo = HostScheduler(models_resident=0, max_concurrency=1)
        workflows = [LABEL, SUMMARIZE]
        assert swaps_for(sim, fifo_store, workflows, fifo, concurrency=2 * N, discover=False) == (
            2 * N
        )
        host = HostScheduler(models_resident=1, max_concurrency=1)
        swaps = swaps_for(sim, affinity_store, workflows, host, concurrency=2 * N, discover=False)
        assert swaps == 2 and host.switches == 2
    finally:
        fifo_store.close()
        affinity_store.close()


PROJECT_WORKFLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Sink, Source, Workflow


class ItemIn(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


class Summary(BaseModel):
    item_id: int
    summary: str


WORKFLOWS = [
    Workflow(
        "label_and_summarize",
        input=ItemIn,
        output=Summary,
        subject_key="item_id",
        source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id)"),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[
            LLMStep("label", prompt="item_id: {{ item_id }}", actor="a", output=Label),
            LLMStep("summary", prompt="item_id: {{ label.item_id }}", actor="b"),
        ],
    )
]
"""


def test_models_resident_in_turing_toml_batches_a_project(tmp_path: Path, sim: Simulator) -> None:
    (tmp_path / "flows.py").write_text(PROJECT_WORKFLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "sqlite:///{tmp_path / "t.db"}"\nworkflows = ["flows.py"]\n\n'
        f'[actors]\na = "ollama:{A}"\nb = "ollama:{B}"\n\n'
        f'[providers.ollama]\nbase_url = "{sim.url}"\nmodels_resident = 1\nhost_concurrency = 1\n'
    )
    project = Project.load(tmp_path / "turing.toml")
    orch = Orchestrator.from_project(project, concurrency=N)
    try:
        with orch.store.db.tx() as tx:
            for ddl in TABLES:
                tx.sql(ddl)
            for i in range(1, N + 1):
                tx.sql("INSERT INTO items (item_id, text) VALUES (:i, 'x')", {"i": i})
        sim.reset()
        report = orch.process_pending_tasks()
        assert report.succeeded == N, report.as_dict()
        assert sim.stats()["swaps"] == 2
        [host] = list(orch.shared_hosts)
        assert host.switches == 2 and host.peak_in_progress == 1
    finally:
        orch.close()
