"""Model-affinity batching across processes: several orchestrators (each with its own store,
scheduler and holder id, in threads) on one simulated GPU holding one model. Each one's own
scheduler cannot stop them interleaving models; the shared model phase in the database can.

Only swap counts (the simulator's `/sim/stats`) and phase contents are asserted, never
durations; the simulator's time is scaled down (call 2 ms, swap 20 ms).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from integration.conftest import Backend
from integration.onegpu import A, B, ItemIn, N, actors, one_gpu
from turing import Executor, LLMStep, Orchestrator, Project, Registry, Sink, Workflow
from turing.actors.affinity import HostScheduler, host_key
from turing.actors.shared_host import LocalDemand, SharedHost
from turing.orchestrator import Report
from turing.sim import Simulator
from turing.store import Store


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    yield from one_gpu()


class Answer(BaseModel):
    item_id: int
    answer: str


def one_step(name: str, actor: str) -> Workflow:
    return Workflow(
        name,
        input=ItemIn,
        output=Answer,
        subject_key="item_id",
        sink=Sink.sql(f"INSERT INTO {name} (item_id, answer) VALUES (:item_id, :answer)"),
        steps=[LLMStep("ask", prompt="item_id: {{ item_id }}\ntext: {{ text }}", actor=actor)],
    )


ON_A = one_step("on_a", "a")
ON_B = one_step("on_b", "b")


def seed(backend: Backend, which: str) -> None:
    store = backend.store(which)
    try:
        with store.db.tx() as tx:
            for wf in (ON_A, ON_B):
                tx.sql(f"CREATE TABLE {wf.name} (item_id INTEGER PRIMARY KEY, answer TEXT)")
        for wf in (ON_A, ON_B):
            items = [(str(i), {"item_id": i, "text": f"item {i}"}) for i in range(1, N + 1)]
            store.enqueue(wf.name, wf.version, items)
    finally:
        store.close()


def run_workers(sim: Simulator, backend: Backend, which: str, *, shared: bool) -> int:
    """Two workers, one on the workflow of model A, one on model B's, started together;
    each with its own host scheduler (one call at a time). Returns the simulator's swaps."""
    seed(backend, which)
    sim.reset()
    barrier = threading.Barrier(2)
    reports: dict[str, Report] = {}
    errors: list[BaseException] = []

    def work(workflow: Workflow) -> None:
        store = backend.store(which)
        try:
            host = HostScheduler(models_resident=1, max_concurrency=1, name=sim.url)
            if shared:
                host.share(
                    SharedHost(
                        store.db,
                        host_key(sim.url),
                        f"worker-{workflow.name}",
                        models_resident=1,
                        max_wait_s=300.0,
                        poll_s=0.005,
                    )
                )
            orch = Orchestrator(
                Registry([ON_A, ON_B]), Executor(actors(sim, host)), store, concurrency=N
            )
            barrier.wait(10)
            reports[workflow.name] = orch.process_pending_tasks(
                workflows=[workflow.name], discover=False
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(wf,)) for wf in (ON_A, ON_B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for wf in (ON_A, ON_B):
        report = reports[wf.name]
        assert report.succeeded == N and report.failed == 0, report.as_dict()
    store = backend.store(which)
    try:
        with store.db.read() as tx:
            for wf in (ON_A, ON_B):
                assert tx.sql(f"SELECT COUNT(*) AS n FROM {wf.name}")[0]["n"] == N
            if shared:  # every registration was withdrawn at the end
                assert tx.sql("SELECT COUNT(*) AS n FROM turing_host_demand")[0]["n"] == 0
    finally:
        store.close()
    swaps: int = sim.stats()["swaps"]
    return swaps


def test_a_shared_phase_stops_two_workers_interleaving_models(
    backend: Backend, sim: Simulator
) -> None:
    naive = run_workers(sim, backend, "naive", shared=False)
    shared = run_workers(sim, backend, "shared", shared=True)
    # apart, each worker keeps its own model loaded and the host swaps on almost every call;
    # together, model A's calls all run, then model B's
    assert shared <= 3, (naive, shared)
    assert naive >= 4 * shared, (naive, shared)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_holders_registration_expires_and_frees_the_host(backend: Backend) -> None:
    store = backend.store()
    try:
        clock = FakeClock()
        host = "http://127.0.0.1:1"

        def holder(name: str) -> SharedHost:
            return SharedHost(
                store.db, host, name, models_resident=1, max_wait_s=None, ttl_s=10.0, clock=clock
            )

        dead, live = holder("dead"), holder("live")
        assert dead.sync({A: LocalDemand(1, 3, clock.now)}) == {A}  # then killed mid-call
        clock.now += 1
        assert live.sync({B: LocalDemand(0, 5, clock.now)}) == {A}  # A is busy: B waits
        clock.now += 8
        assert live.sync({B: LocalDemand(0, 5, clock.now - 8)}) == {A}  # still alive
        clock.now += 2  # the dead holder's rows have expired: they no longer count
        assert live.sync({B: LocalDemand(0, 5, clock.now - 10)}) == {B}
        assert [pm.model for pm in live.phase()] == [B]
        with store.db.read() as tx:
            rows = tx.sql("SELECT holder FROM turing_host_demand")
        assert [r["holder"] for r in rows] == ["live"]  # pruned
        assert live.sync({}) == frozenset()  # no demand: the host is free again
        assert live.phase() == []
    finally:
        store.close()


def test_a_starved_model_closes_the_phase_and_nothing_starts_until_it_switches(
    backend: Backend,
) -> None:
    store = backend.store()
    try:
        clock = FakeClock()
        host = "http://127.0.0.1:2"

        def holder(name: str) -> SharedHost:
            return SharedHost(
                store.db, host, name, models_resident=1, max_wait_s=60.0, ttl_s=600, clock=clock
            )

        p1, p2 = holder("p1"), holder("p2")
        start = clock.now
        assert p1.sync({A: LocalDemand(1, 50, start)}) == {A}
        assert p2.sync({B: LocalDemand(0, 1, start)}) == {A}  # B waits
        clock.now += 61  # B has waited past the bound, and A has had its turn
        assert p2.sync({B: LocalDemand(0, 1, start)}) == frozenset()  # A closed, draining
        [closed] = p2.phase()
        assert closed.model == A and not closed.open
        # p1 learns that A is closed: its queued calls are held back; one still in flight
        assert p1.sync({A: LocalDemand(1, 49, start)}) == frozenset()
        assert p2.sync({B: LocalDemand(0, 1, start)}) == frozenset()
        # p1's call ends: A leaves, the starved B joins
        assert p1.sync({A: LocalDemand(0, 49, start)}) == {B}
        assert p2.sync({B: LocalDemand(1, 0, start)}) == {B}
        # A has waited long too, but B keeps its turn for the bound before A may close it
        clock.now += 30
        assert p1.sync({A: LocalDemand(0, 49, start)}) == {B}
    finally:
        store.close()


DEAD_HOLDER = """
import sys, time
from turing.actors.shared_host import LocalDemand, SharedHost
from turing.store import open_store

store = open_store(sys.argv[1])
shared = SharedHost(store.db, sys.argv[2], "doomed", models_resident=1, max_wait_s=None, ttl_s=1.0)
print(sorted(shared.sync({sys.argv[3]: LocalDemand(1, 5, time.time())})), flush=True)
time.sleep(600)  # "in the middle of a call" until killed
"""


def test_a_killed_process_does_not_block_the_host(
    backend: Backend, sim: Simulator, tmp_path: Path
) -> None:
    """A real process takes the phase for model A and is killed mid-call; a live worker with
    model B's calls is held back only until the dead one's registration expires (1 s)."""
    seed(backend, "main")
    script = tmp_path / "doomed.py"
    script.write_text(DEAD_HOLDER)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    doomed = subprocess.Popen(
        [sys.executable, str(script), backend.url("main"), host_key(sim.url), A],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == repr([A])
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    store = backend.store("main")
    try:
        host = HostScheduler(models_resident=1, max_concurrency=1, name=sim.url)
        shared = SharedHost(
            store.db, host_key(sim.url), "live", models_resident=1, max_wait_s=None, poll_s=0.01
        )
        host.share(shared)
        orch = Orchestrator(Registry([ON_A, ON_B]), Executor(actors(sim, host)), store)
        sim.reset()
        report = orch.process_pending_tasks(workflows=[ON_B.name], discover=False)
        assert report.succeeded == N and report.failed == 0, report.as_dict()
        assert shared.syncs > 2  # it waited (polling) for the dead registration to expire
        with store.db.read() as tx:
            assert tx.sql("SELECT COUNT(*) AS n FROM on_b")[0]["n"] == N
            rows = tx.sql("SELECT holder, expires_at FROM turing_host_demand")
        # expired (pruned, or about to be: expired rows count for nothing)
        assert all(r["expires_at"] <= time.time() for r in rows if r["holder"] == "doomed")
        assert [pm.model for pm in shared.phase()] == []
        assert sim.stats()["swaps"] == 1
    finally:
        store.close()


PROJECT_WORKFLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Sink, Workflow


class ItemIn(BaseModel):
    item_id: int
    text: str


class Answer(BaseModel):
    item_id: int
    answer: str


WORKFLOWS = [
    Workflow(
        name,
        input=ItemIn,
        output=Answer,
        subject_key="item_id",
        sink=Sink.sql(f"INSERT INTO {name} (item_id, answer) VALUES (:item_id, :answer)"),
        steps=[LLMStep("ask", prompt="item_id: {{ item_id }}", actor=actor)],
    )
    for name, actor in (("on_a", "a"), ("on_b", "b"))
]
"""


def test_shared_host_in_turing_toml_gives_the_host_a_shared_phase(
    tmp_path: Path, sim: Simulator
) -> None:
    (tmp_path / "flows.py").write_text(PROJECT_WORKFLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "sqlite:///{tmp_path / "t.db"}"\nworkflows = ["flows.py"]\n\n'
        f'[actors]\na = "ollama:{A}"\nb = "ollama:{B}"\n\n'
        f'[providers.ollama]\nbase_url = "{sim.url}"\nmodels_resident = 1\n'
        "host_concurrency = 1\nshared_host = true\n"
    )
    project = Project.load(tmp_path / "turing.toml")
    orch = Orchestrator.from_project(project, concurrency=N)
    try:
        store: Store = orch.store
        with store.db.tx() as tx:
            tx.sql("CREATE TABLE on_a (item_id INTEGER PRIMARY KEY, answer TEXT)")
            tx.sql("CREATE TABLE on_b (item_id INTEGER PRIMARY KEY, answer TEXT)")
        for name in ("on_a", "on_b"):
            wf = project.workflow(name)
            items = [(str(i), {"item_id": i, "text": "x"}) for i in range(1, N + 1)]
            store.enqueue(wf.name, wf.version, items)
        sim.reset()
        report = orch.process_pending_tasks(discover=False)
        assert report.succeeded == 2 * N, report.as_dict()
        assert sim.stats()["swaps"] == 2
        [host] = list(orch.shared_hosts)
        assert host.shared is not None and host.shared.holder == orch.worker_id
        assert host.shared.syncs > 0
        with store.db.read() as tx:
            assert tx.sql("SELECT COUNT(*) AS n FROM turing_host_demand")[0]["n"] == 0
    finally:
        orch.close()
