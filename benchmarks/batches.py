"""Provider batches: what the batch path costs and how fast Turing moves tasks through it.

N one-step labelling tasks (default 1000; the items/labels domain of llm_bound.py) on a
fresh SQLite file, the OpenAI provider against the simulator (no latency, turnaround 0),
with the simulator's `missing_field` fault at 10%: an answer without its label breaks the
contract (repair cannot invent one) and is re-asked. Prices $0.15 / $0.60 per million
input / output tokens; the batch rate is half.

  sync    batch = "off": every task claimed and called synchronously (concurrency 16)
  batch   batch = "on": discover + submit (claim, render through the executor, record,
          upload, create), then poll rounds until nothing is open (each ingests the
          results through repair, validation and the guarded group commit; re-asks go
          into the next batch)

Reported: succeeded tasks, calls, batches, cost, cost per succeeded task, and Turing's own
time per task for submission and ingestion (the provider's turnaround is not in it).

Run: `.venv/bin/python benchmarks/batches.py [N]`.
"""

from __future__ import annotations

import asyncio
import sys
import time

from _common import database
from llm_bound import WORKFLOW, add_items
from turing import Executor, Orchestrator, Registry
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.sim import SimConfig, Simulator
from turing.store.store import Store

N = int(next((a for a in sys.argv[1:] if a.isdigit()), "1000"))
PRICE_IN, PRICE_OUT = 0.15, 0.60


def run(batch: str) -> None:
    config = SimConfig.profile("fast", seed=7, faults={"missing_field": 0.10})
    with database("sqlite") as (_url, db), Simulator(config) as sim:
        add_items(db, N)
        settings = ActorSettings(
            "openai",
            "gpt-4o-mini",
            name="labeler",
            base_url=sim.openai_url,
            timeout=10,
            max_retries=0,
            price_input=PRICE_IN,
            price_output=PRICE_OUT,
            batch=batch,
        )
        actor = ManagedActor(create(settings), settings, seed=3)
        store = Store(db)
        orch = Orchestrator(
            Registry([WORKFLOW]), Executor({"labeler": actor}), store, concurrency=16
        )
        started = time.perf_counter()
        orch.process_pending_tasks()  # sync: everything; batch: discover and submit
        submit_s = time.perf_counter() - started
        ingest_s, rounds = 0.0, 0
        if batch != "off":

            async def poll() -> bool:
                async with orch.session():
                    await orch.batcher.poll(force=True)
                return bool(orch.batcher.batches.open())

            while True:
                began = time.perf_counter()
                still_open = asyncio.run(poll())
                ingest_s += time.perf_counter() - began
                rounds += 1
                if not still_open and not store.queue_overview().pending:
                    break
                began = time.perf_counter()
                orch.process_pending_tasks(discover=False)  # the re-asks' batch
                submit_s += time.perf_counter() - began
        with db.read() as tx:
            [row] = tx.sql(
                "SELECT COUNT(*) AS calls, SUM(cost) AS cost, COUNT(batch_id) AS batched, "
                "COUNT(DISTINCT batch_id) AS batches FROM turing_calls"
            )
            [done] = tx.sql("SELECT COUNT(*) AS n FROM labels")
        orch.close()
    n_ok = int(done["n"])
    cost = float(row["cost"] or 0)
    print(
        f"  {batch:4} {n_ok:6} ({n_ok / N:6.1%}) {row['calls']:6} {row['batches']:8} "
        f"{cost:10.6f} {cost / max(1, n_ok) * 1e6:12.2f} "
        f"{submit_s / N * 1e3:10.3f} {ingest_s / N * 1e3:10.3f} {rounds:7}"
    )


def main() -> None:
    print(
        f"provider batches: {N} labelling tasks on SQLite, OpenAI provider -> simulator "
        f"(missing_field 10%), ${PRICE_IN}/${PRICE_OUT} per M tokens, batch rate x0.5"
    )
    print(
        f"  {'mode':4} {'succeeded':>15} {'calls':>6} {'batches':>8} {'cost $':>10} "
        f"{'$/M tasks':>12} {'submit ms':>10} {'ingest ms':>10} {'polls':>7}"
    )
    for batch in ("off", "on"):
        run(batch)
    print("  (submit / ingest ms: Turing's time per task; sync: the whole run under submit)")


if __name__ == "__main__":
    main()
