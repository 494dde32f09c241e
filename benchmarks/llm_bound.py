"""LLM-bound efficiency (benchmark 2): 2,000 one-LLM-step tasks against the simulator with a
fixed 100 ms latency (no jitter, generation adds nothing) at concurrency 32.

The ideal is 32 / 0.1 s = 320 tasks/s; target >= 95% of it, and at least 95% of the
simulator's own ceiling (the first reference line below). The simulator runs in its own
process with no residency limit (no swaps); Turing runs the Orchestrator on SQLite, or on
PostgreSQL with `--backend postgres` (a fresh schema, dropped afterwards; `--backend` twice
runs both, one after the other, on one simulator) (discover,
claim, validate, call through the Ollama provider and a `ManagedActor`, repair, validate,
sink, history). Prints tasks/s and the share of the ideal, measured from the first claim
(`--with-discovery` includes discovery and enqueueing), and where the time goes: CPU per
task in Turing and in the simulator, and CPU other processes took meanwhile (a shared
machine skews everything).

Two references on the same simulator, unless `--no-reference`:
- the simulator's ceiling: `concurrency` closed loops of calls through a minimal keep-alive
  HTTP/1.1 client (no Turing, no httpx), so what no client can beat on this machine;
- Turing's provider alone: the same loops through the `ManagedActor` and Ollama provider,
  without the Orchestrator, so the difference to the full run is the orchestrator's.
Run: `.venv/bin/python benchmarks/llm_bound.py [N] [--backend sqlite|postgres]... [--concurrency C]
[--openai] [--no-reference]`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from _common import database
from batching import SimProcess
from turing import (
    Executor,
    LLMStep,
    Message,
    ModelRequest,
    Orchestrator,
    Registry,
    Sink,
    Source,
    Workflow,
)
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.store.store import Store

LATENCY_S = 0.1
MODEL = "qwen2.5:7b"


class ItemIn(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


WORKFLOW = Workflow(
    "label_items",
    input=ItemIn,
    output=Label,
    subject_key="item_id",
    source=Source(
        sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
        "(SELECT 1 FROM labels l WHERE l.item_id = i.item_id) ORDER BY item_id"
    ),
    sink=Sink.sql("INSERT INTO labels (item_id, label) VALUES (:item_id, :label)"),
    steps=[
        LLMStep(
            "label",
            prompt="Label this item.\nitem_id: {{ item_id }}\ntext: {{ text }}",
            actor="labeler",
        )
    ],
)


def machine_busy_s() -> float:
    """CPU seconds all processes on this machine have used (Linux /proc/stat), else 0."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


SCHEMA = {
    "type": "object",
    "properties": {"item_id": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["item_id", "label"],
}


def prompt(i: int) -> str:
    return f"Label this item.\nitem_id: {i}\ntext: item number {i}"


class MinimalClient:
    """Keep-alive HTTP/1.1 POSTs of JSON over asyncio streams: the least a client can cost."""

    def __init__(self, url: str) -> None:
        host_port = url.split("//", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode()
        reader, writer = (
            self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        )
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(v)
            for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
            if k.strip().lower() == b"content-length"
        )
        data = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return json.loads(data)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def warm_up(url: str) -> None:
    """One call through a minimal client: the simulator has the model loaded afterwards."""
    client = MinimalClient(url)
    chat = {"model": MODEL, "messages": [{"role": "user", "content": prompt(0)}]}
    await client.post("/api/chat", chat | {"format": SCHEMA, "stream": False})
    client.close()


def closed_loops(n: int, concurrency: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Calls/s of `concurrency` loops, each making its share of n calls one after another."""

    async def loop(ids: range) -> None:
        for i in ids:
            await call(i)

    async def run() -> float:
        for i in range(concurrency):  # warm up: connections open
            await call(i)
        started = time.perf_counter()
        await asyncio.gather(*(loop(range(k, n, concurrency)) for k in range(concurrency)))
        return n / (time.perf_counter() - started)

    return asyncio.run(run())


def references(url: str, provider: str, n: int, concurrency: int, ideal: float) -> float:
    """Print both reference lines; return the simulator's ceiling in calls/s."""
    client: MinimalClient | None = None

    async def minimal(i: int) -> None:
        nonlocal client
        client = client or MinimalClient(url)
        answer = await client.post(
            "/api/chat",
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt(i)}],
                "format": SCHEMA,
                "stream": False,
            },
        )
        assert answer["message"]["content"]

    rate = ceiling = closed_loops(n, concurrency, minimal)
    print(
        f"  reference, simulator ceiling (minimal HTTP client, no Turing): {rate:6.1f} calls/s "
        f"= {100 * rate / ideal:5.1f}% of ideal"
    )
    base = url + ("/v1" if provider == "openai" else "")
    settings = ActorSettings.parse(f"{provider}:{MODEL}", base_url=base, max_retries=0)
    actor = ManagedActor(create(settings), settings)

    async def managed(i: int) -> None:
        await actor.complete(ModelRequest((Message("user", prompt(i)),), schema=SCHEMA))

    rate = closed_loops(n, concurrency, managed)
    print(
        f"  reference, Turing's provider without the orchestrator:        {rate:6.1f} calls/s "
        f"= {100 * rate / ideal:5.1f}% of ideal"
    )
    return ceiling


def add_items(db: Any, n: int) -> None:
    """The benchmark's domain: `items` 1..n (the source) and an empty `labels` (the sink)."""
    with db.tx() as tx:
        tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        tx.sql("CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
        for start in range(1, n + 1, 5000):
            values = ", ".join(
                f"({i}, 'item number {i}')" for i in range(start, min(n, start + 4999) + 1)
            )
            tx.sql(f"INSERT INTO items (item_id, text) VALUES {values}")


def run_turing(
    kind: str, sim: SimProcess, argv: list[str], *, n: int, concurrency: int, provider: str
) -> float:
    """One Orchestrator run on `kind`; prints it and returns tasks/s."""
    ideal = concurrency / LATENCY_S
    with database(kind) as (_url, db):
        store = Store(db)
        add_items(db, n)
        url = sim.url + ("/v1" if provider == "openai" else "")
        settings = ActorSettings.parse(f"{provider}:{MODEL}", base_url=url, max_retries=0)
        executor = Executor({"labeler": ManagedActor(create(settings), settings)})
        orch = Orchestrator(Registry([WORKFLOW]), executor, store, concurrency=concurrency)
        if "--with-discovery" not in argv:
            orch.discover_pending_tasks()
        # Load the model before the clock starts, as the references' warm-up does: the
        # simulator charges `swap_s` (0.5 s) on a model's first use, like Ollama loading it,
        # which is the model server's start-up, not 100 ms calls.
        asyncio.run(warm_up(sim.url))
        calls_before = sim.stats()["calls"]
        busy = machine_busy_s()
        started, cpu, sim_cpu = time.perf_counter(), time.process_time(), sim.cpu_s()
        report = orch.process_pending_tasks(discover="--with-discovery" in argv)
        secs = time.perf_counter() - started
        cpu, sim_cpu = time.process_time() - cpu, sim.cpu_s() - sim_cpu
        others = machine_busy_s() - busy - cpu - sim_cpu
        calls = sim.stats()["calls"] - calls_before
        assert report.succeeded == n, report.as_dict()
        with db.read() as tx:
            assert tx.sql("SELECT COUNT(*) AS n FROM labels")[0]["n"] == n
    rate = n / secs
    print(
        f"  turing ({kind}): {rate:6.1f} tasks/s = {100 * rate / ideal:5.1f}% of ideal  "
        f"({secs:.2f} s for {n:,}; ideal {n / ideal:.2f} s; simulator calls {calls})"
    )
    print(
        f"    CPU: turing {cpu:.2f} s ({1000 * cpu / n:.2f} ms/task, {100 * cpu / secs:.0f}% of "
        f"a core), simulator {sim_cpu:.2f} s "
        f"({1000 * sim_cpu / n:.2f} ms/call); other processes on this machine "
        f"{others / secs:.2f} of {os.cpu_count()} cores meanwhile (PostgreSQL's server among them)"
    )
    return rate


def main(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 2000)
    concurrency = int(argv[argv.index("--concurrency") + 1]) if "--concurrency" in argv else 32
    provider = "openai" if "--openai" in argv else "ollama"
    kinds = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--backend"] or ["sqlite"]
    if unknown := set(kinds) - {"sqlite", "postgres"}:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    ideal = concurrency / LATENCY_S
    spec: dict[str, Any] = {
        "models": {MODEL: [LATENCY_S, 0.0, 0.0]},
        "models_resident": 0,
        "time_scale": 1.0,
    }
    print(
        f"llm-bound: {n:,} one-step LLM tasks, {LATENCY_S * 1000:g} ms fixed latency, "
        f"concurrency {concurrency}, {provider} provider, {' and '.join(kinds)}; "
        f"ideal {ideal:g} tasks/s"
    )
    with SimProcess(spec) as sim:
        rates = {
            kind: run_turing(kind, sim, argv, n=n, concurrency=concurrency, provider=provider)
            for kind in kinds
        }
        if "--no-reference" not in argv:
            ceiling = references(sim.url, provider, n, concurrency, ideal)
            for kind, rate in rates.items():
                print(
                    f"  turing ({kind}) / simulator ceiling: {100 * rate / ceiling:5.1f}% "
                    "(target: at least 95%)"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
