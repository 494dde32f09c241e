"""Model-affinity batching (benchmark 3): 200 items through a two-step pipeline whose steps use
two different models on one simulated GPU that holds one model at a time.

Setup: the simulator runs in its own process (a model host is another process), real time
(time_scale 1): `models_resident=1`, swap 2 s, every call 0.2 s (fixed: no jitter, generation
adds nothing). Turing talks to it through the Ollama provider, each actor a `ManagedActor`
wrapped in an `AffinityActor` that shares one `HostScheduler(models_resident=1,
max_concurrency=1)`: the host serves one call at a time. The Orchestrator runs on SQLite with
concurrency = the number of items, so every item is in flight (a waiting call costs nothing).

Compared with:
- naive per-item order: each item step 1 then step 2, one item after the other (the
  Orchestrator at concurrency 1, no scheduler), measured for real on a sample (10 items by
  default) and extrapolated linearly, or run in full with `--naive-full`;
- the lower bound: every call one after the other plus the fewest swaps (2: load A, load B);
- with `--fifo`: the same run with a first-come-first-served host limit instead of the
  affinity scheduler (an ablation).

Prints makespans, the swaps counted by the simulator (`/sim/stats`) and by the scheduler,
the speed-up over naive (target >= 10x) and the distance to the lower bound (target <= 10%).
Run: `.venv/bin/python benchmarks/batching.py [N] [--naive-sample K] [--naive-full] [--fifo]`.

Several processes on the one GPU: `--workers W [--backend sqlite|postgres]` runs W worker
processes (each an Orchestrator with its own affinity scheduler, concurrency N / W) on one
database and one task queue, twice: each process ordering only its own calls (what a host
scheduler alone gives) and with `shared_host` (one model phase through the database,
`turing.actors.shared_host`). Prints both makespans and the simulator's swap counts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel

from _common import ROOT, database
from turing import Executor, LLMStep, Orchestrator, Registry, Sink, Source, Workflow
from turing.actors.affinity import AffinityActor, HostScheduler, host_key
from turing.actors.base import Actor
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.actors.shared_host import SharedHost
from turing.providers import create
from turing.store.store import Store, open_store

MODEL_A = "qwen2.5:7b"
MODEL_B = "llama3.1:8b"
CALL_S = 0.2
SWAP_S = 2.0


# ------------------------------------------------------------------- the simulator process
class SimProcess:
    """The LLM simulator in a child process on a free loopback port.

    `spec`: SimConfig fields, with `models` as {name: [ttft_s, tokens_per_s, jitter]} and
    `default_latency` as [ttft_s, tokens_per_s, jitter]."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = dict(spec)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> SimProcess:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-sim", str(port), json.dumps(self.spec)],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("the simulator did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(self.url + "/sim/stats", timeout=10).json()
        return result

    def reset(self) -> None:
        httpx.post(self.url + "/sim/reset", timeout=10).raise_for_status()

    def cpu_s(self) -> float:
        """CPU seconds the simulator process has used so far (Linux)."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_sim(port: int, spec: dict[str, Any]) -> None:
    from turing.sim import ModelLatency, SimConfig, serve

    spec = dict(spec)
    models = {m: ModelLatency(*lat) for m, lat in spec.pop("models", {}).items()}
    if "default_latency" in spec:
        spec["default_latency"] = ModelLatency(*spec["default_latency"])
    config = SimConfig(name="bench", models=models, **spec)
    serve(config, port=port, log_level="warning")


# ------------------------------------------------------------------------ the workflow
class ItemIn(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


class Summary(BaseModel):
    item_id: int
    summary: str


WORKFLOW = Workflow(
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
            "label",
            prompt="Label this item.\nitem_id: {{ item_id }}\ntext: {{ text }}",
            actor="labeler",
            output=Label,
        ),
        LLMStep(
            "summary",
            prompt="Summarize this item.\nitem_id: {{ label.item_id }}\nlabel: {{ label.label }}",
            actor="summarizer",
        ),
    ],
)


def actors(url: str, host: HostScheduler | None) -> dict[str, Actor]:
    out: dict[str, Actor] = {}
    for name, model in (("labeler", MODEL_A), ("summarizer", MODEL_B)):
        settings = ActorSettings.parse(f"ollama:{model}", base_url=url, max_retries=0)
        actor: Actor = ManagedActor(create(settings), settings)
        out[name] = actor if host is None else AffinityActor(actor, host)
    return out


def run_pipeline(
    sim: SimProcess, n: int, *, concurrency: int, host: HostScheduler | None
) -> tuple[float, dict[str, Any]]:
    """Process n items through the Orchestrator on a fresh SQLite file: (makespan, sim stats)."""
    with database("sqlite") as (_url, db):
        store = Store(db)
        with db.tx() as tx:
            tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
            tx.sql("CREATE TABLE summaries (item_id INTEGER PRIMARY KEY, summary TEXT NOT NULL)")
            values = ", ".join(f"({i}, 'item number {i}')" for i in range(1, n + 1))
            tx.sql(f"INSERT INTO items (item_id, text) VALUES {values}")
        orch = Orchestrator(
            Registry([WORKFLOW]), Executor(actors(sim.url, host)), store, concurrency=concurrency
        )
        sim.reset()
        started = time.perf_counter()
        report = orch.process_pending_tasks()
        makespan = time.perf_counter() - started
        stats = sim.stats()
        assert report.succeeded == n, report.as_dict()
        with db.read() as tx:
            assert tx.sql("SELECT COUNT(*) AS n FROM summaries")[0]["n"] == n
    return makespan, stats


# ------------------------------------------------------- several worker processes, one GPU
def _worker(db_url: str, sim_url: str, shared: bool, concurrency: int, holder: str) -> None:
    """One worker process: claim and run the pipeline's tasks until none is left."""
    store = open_store(db_url)
    host = HostScheduler(models_resident=1, max_concurrency=1, name=sim_url)
    if shared:
        host.share(
            SharedHost(store.db, host_key(sim_url), holder, models_resident=1, max_wait_s=300.0)
        )
    orch = Orchestrator(
        Registry([WORKFLOW]), Executor(actors(sim_url, host)), store, concurrency=concurrency
    )
    report = orch.process_pending_tasks(discover=False)
    assert report.failed == 0, report.as_dict()
    print(json.dumps({"holder": holder, "succeeded": report.succeeded, "switches": host.switches}))
    store.close()


def run_workers(
    sim: SimProcess, n: int, workers: int, *, shared: bool, backend: str
) -> tuple[float, dict[str, Any]]:
    with database(backend) as (url, db):
        store = Store(db)
        with db.tx() as tx:
            tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
            tx.sql("CREATE TABLE summaries (item_id INTEGER PRIMARY KEY, summary TEXT NOT NULL)")
        items = [(str(i), {"item_id": i, "text": f"item number {i}"}) for i in range(1, n + 1)]
        store.enqueue(WORKFLOW.name, WORKFLOW.version, items)
        sim.reset()
        per = max(1, -(-n // workers))
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    sim.url,
                    str(int(shared)),
                    str(per),
                    f"bench-{i}",
                ],
                cwd=ROOT,
            )
            for i in range(workers)
        ]
        for proc in procs:
            assert proc.wait(3600) == 0
        makespan = time.perf_counter() - started
        stats = sim.stats()
        with db.read() as tx:
            done = tx.sql("SELECT COUNT(*) AS n FROM summaries")[0]["n"]
        assert done == n, done
    return makespan, stats


def main_workers(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 200)
    workers = int(argv[argv.index("--workers") + 1])
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "sqlite"
    spec = {
        "models": {MODEL_A: [CALL_S, 0.0, 0.0], MODEL_B: [CALL_S, 0.0, 0.0]},
        "swap_s": SWAP_S,
        "models_resident": 1,
        "time_scale": 1.0,
    }
    lower = 2 * n * CALL_S + 2 * SWAP_S
    print(
        f"batching, {workers} worker processes ({backend}): {n} items x 2 LLM steps on one "
        f"simulated GPU: 1 model resident, swap {SWAP_S:g} s, call {CALL_S:g} s, real time"
    )
    with SimProcess(spec) as sim:
        for shared, label in ((False, "each process on its own"), (True, "shared_host")):
            makespan, stats = run_workers(sim, n, workers, shared=shared, backend=backend)
            print(
                f"  {label:24s} {makespan:7.1f} s   swaps {stats['swaps']:4d} (fewest: 2)   "
                f"calls {stats['calls']}"
            )
    print(
        f"  reference: every call one after the other + 2 swaps: {lower:7.1f} s (not a bound "
        f"here: each process has one call in flight, so up to {workers} run at once)"
    )


def main(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 200)
    sample = int(argv[argv.index("--naive-sample") + 1]) if "--naive-sample" in argv else 10
    naive_full = "--naive-full" in argv
    spec = {
        "models": {MODEL_A: [CALL_S, 0.0, 0.0], MODEL_B: [CALL_S, 0.0, 0.0]},
        "swap_s": SWAP_S,
        "models_resident": 1,
        "time_scale": 1.0,
    }
    calls = 2 * n
    lower = calls * CALL_S + 2 * SWAP_S
    print(
        f"batching: {n} items x 2 LLM steps ({MODEL_A}, then {MODEL_B}) on one simulated GPU: "
        f"1 model resident, swap {SWAP_S:g} s, call {CALL_S:g} s, one call at a time, real time"
    )
    with SimProcess(spec) as sim:
        host = HostScheduler(models_resident=1, max_concurrency=1, name=sim.url)
        turing_s, stats = run_pipeline(sim, n, concurrency=n, host=host)
        print(
            f"  turing (affinity scheduler, {n} in flight): {turing_s:7.1f} s   "
            f"swaps {stats['swaps']} (scheduler: {host.switches})   calls {stats['calls']}"
        )
        if "--fifo" in argv:
            fifo = HostScheduler(models_resident=0, max_concurrency=1, name=sim.url)
            fifo_s, fifo_stats = run_pipeline(sim, n, concurrency=n, host=fifo)
            print(
                f"  ablation, first-come-first-served host limit: {fifo_s:7.1f} s   "
                f"swaps {fifo_stats['swaps']}"
            )
        k = n if naive_full else min(sample, n)
        naive_k, naive_stats = run_pipeline(sim, k, concurrency=1, host=None)
        naive_s = naive_k * n / k
        naive_swaps = naive_stats["swaps"] * n / k
        how = "measured" if k == n else f"measured on {k} items ({naive_k:.1f} s), x{n / k:g}"
        print(
            f"  naive per-item order:                  {naive_s:7.1f} s   "
            f"swaps {naive_swaps:.0f}   ({how})"
        )
    print(f"  lower bound ({calls} calls x {CALL_S:g} s + 2 swaps x {SWAP_S:g} s):  {lower:7.1f} s")
    print(f"  speed-up over naive: {naive_s / turing_s:5.1f}x   (target >= 10x)")
    print(f"  above the lower bound: {100 * (turing_s / lower - 1):5.1f}%  (target <= 10%)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-sim":
        _serve_sim(int(sys.argv[2]), json.loads(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]), sys.argv[6])
    elif "--workers" in sys.argv:
        main_workers(sys.argv[1:])
    else:
        main(sys.argv[1:])
