"""Scale-out: 1, 2 and 4 worker processes on one PostgreSQL against the LLM simulator.

The simulator (its own process, one event loop) answers every call after a fixed 100 ms (no
jitter, no residency limit, no faults). For each process count W a fresh PostgreSQL schema
(`?schema=bench_...` on the shared test database, dropped afterwards) gets N items and their
tasks (discovered once, before the clock); then W processes (multiprocessing, spawn), each an
Orchestrator with concurrency C running `process_pending_tasks` on the same queue, start
together and run until the queue is empty. Timed: from the start signal until the last process
has finished. Per W it prints tasks/s, the ideal (W x C / 0.1 s), and the CPU taken by the
workers, the simulator and everything else on the machine (PostgreSQL's server among it), which
says what limits the figure on this machine (2 cores shared by all three).

Loopback only; every process is joined with a time limit and terminated past it.
Run: `.venv/bin/python benchmarks/scale_out.py [N] [--workers 1,2,4] [--concurrency C]`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from _common import database
from batching import SimProcess
from llm_bound import LATENCY_S, MODEL, WORKFLOW, add_items, machine_busy_s, warm_up
from turing import Executor, Orchestrator, Registry
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.store.db import connect
from turing.store.store import Store

TIME_LIMIT_S = 300.0


class PostgresCPU:
    """CPU seconds of the local PostgreSQL server's processes while running (Linux).

    Samples every process named `postgres` every 50 ms from a thread, so that a connection's
    backend that exits before the end is still counted (up to its last sample). Every client's
    backends count, not only the benchmark's: on a shared server this is an upper bound.
    """

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _sample() -> dict[int, float]:
        tick = os.sysconf("SC_CLK_TCK")
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
            except OSError:
                continue
            if head.endswith("(postgres"):
                fields = tail.split()
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        return found

    def _run(self) -> None:
        while True:
            for pid, cpu in self._sample().items():
                self.first.setdefault(pid, 0.0)  # a new backend started at 0
                self.last[pid] = cpu
            if self.stop.wait(0.05):
                return

    def __enter__(self) -> PostgresCPU:
        self.first = self._sample()
        self.last = dict(self.first)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def seconds(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def orchestrator(url: str, sim_url: str, concurrency: int, worker_id: str) -> Orchestrator:
    settings = ActorSettings.parse(f"ollama:{MODEL}", base_url=sim_url, max_retries=0)
    executor = Executor({"labeler": ManagedActor(create(settings), settings)})
    store = Store(connect(url))
    return Orchestrator(
        Registry([WORKFLOW]), executor, store, concurrency=concurrency, worker_id=worker_id
    )


def worker(  # noqa: PLR0917
    url: str, sim_url: str, concurrency: int, worker_id: str, go: Event, out: Any
) -> None:
    """One worker process: set up, wait for the start signal, drain the queue, report."""
    orch = orchestrator(url, sim_url, concurrency, worker_id)
    out.put(("ready", worker_id, 0, 0.0))
    go.wait(60)
    cpu = time.process_time()
    report = orch.process_pending_tasks(discover=False)
    out.put(("done", worker_id, report.succeeded, time.process_time() - cpu))


def run(sim: SimProcess, n: int, workers: int, concurrency: int) -> None:
    ctx = mp.get_context("spawn")
    with database("postgres") as (url, db):
        add_items(db, n)
        Store(db)  # migrations, before the workers start
        orchestrator(url, sim.url, concurrency, "scale-discover").discover_pending_tasks()
        go, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(
                target=worker, args=(url, sim.url, concurrency, f"scale-{workers}-{k}", go, out)
            )
            for k in range(workers)
        ]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                kind, *_rest = out.get(timeout=60)
                assert kind == "ready", kind
            busy, sim_cpu = machine_busy_s(), sim.cpu_s()
            with PostgresCPU() as pg:
                started = time.perf_counter()
                go.set()
                finished = [out.get(timeout=TIME_LIMIT_S) for _ in procs]
                secs = time.perf_counter() - started
                sim_cpu = sim.cpu_s() - sim_cpu
                others = machine_busy_s() - busy
            for p in procs:
                p.join(30)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(10)
        done = sum(f[2] for f in finished)
        cpu = sum(f[3] for f in finished)
        pg_cpu = pg.seconds()
        others -= cpu + sim_cpu + pg_cpu
        with db.read() as tx:
            labels = tx.sql("SELECT COUNT(*) AS n FROM labels")[0]["n"]
        assert done == n == labels, (done, n, labels)
    ideal = workers * concurrency / LATENCY_S
    rate = n / secs
    split = "/".join(str(f[2]) for f in sorted(finished, key=lambda f: f[1]))
    print(
        f"  {workers} process{'es' if workers > 1 else '  '}: {rate:7.1f} tasks/s = "
        f"{100 * rate / ideal:5.1f}% of ideal {ideal:g}  ({secs:.2f} s; tasks per process "
        f"{split})"
    )
    print(
        f"      CPU, in cores: workers {cpu / secs:.2f} ({1000 * cpu / n:.2f} ms/task), "
        f"simulator {sim_cpu / secs:.2f} ({1000 * sim_cpu / n:.2f} ms/call), PostgreSQL "
        f"{pg_cpu / secs:.2f} ({1000 * pg_cpu / n:.2f} ms/task), everything else "
        f"{others / secs:.2f}; of {os.cpu_count()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=4000, help="tasks per process count")
    parser.add_argument("--workers", default="1,2,4", help="process counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=32, help="slots per process")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    print(
        f"scale-out: {args.n:,} one-step LLM tasks per run on one PostgreSQL, simulator with "
        f"{LATENCY_S * 1000:g} ms fixed latency, concurrency {args.concurrency} per process; "
        f"load before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
        flush=True,
    )
    spec: dict[str, Any] = {
        "models": {MODEL: [LATENCY_S, 0.0, 0.0]},
        "models_resident": 0,
        "time_scale": 1.0,
    }
    with SimProcess(spec) as sim:
        asyncio.run(warm_up(sim.url))  # the model's one-time load, before any clock
        for workers in counts:
            run(sim, args.n, workers, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
