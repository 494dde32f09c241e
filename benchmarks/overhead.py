"""Per-task overhead: 20,000 no-op script tasks through the whole path in one process.

Each task is discovered, enqueued, claimed, its input validated, the no-op script run, the
output validated, the sink row written and the run recorded in history, on SQLite and on
PostgreSQL. Prints tasks/s. Run: `.venv/bin/python benchmarks/overhead.py [sqlite|postgres] [N]`.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel

from _common import backends, database, timed
from turing import Executor, Orchestrator, Registry, ScriptStep, Sink, Source, Workflow
from turing.store.store import Store

N = next((int(a) for a in sys.argv[1:] if a.isdigit()), 20_000)


class Item(BaseModel):
    item_id: int
    value: int


def noop(data: dict[str, int]) -> dict[str, int]:
    return {"item_id": data["item_id"], "value": data["value"]}


WORKFLOW = Workflow(
    "noop",
    input=Item,
    output=Item,
    subject_key="item_id",
    source=Source(
        sql="SELECT item_id, value FROM items i WHERE NOT EXISTS "
        "(SELECT 1 FROM done d WHERE d.item_id = i.item_id)"
    ),
    sink=Sink.sql("INSERT INTO done (item_id, value) VALUES (:item_id, :value)"),
    steps=[ScriptStep("noop", run=noop)],
)


def main() -> None:
    print(f"overhead: {N:,} no-op script tasks, validation + history + sink, one process")
    for kind in backends():
        with database(kind) as (_url, db):
            store = Store(db)
            with db.tx() as tx:
                tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
                tx.sql("CREATE TABLE done (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
                for start in range(0, N, 5000):
                    values = ", ".join(
                        f"({i}, {i * 7})" for i in range(start + 1, min(N, start + 5000) + 1)
                    )
                    tx.sql(f"INSERT INTO items (item_id, value) VALUES {values}")
            orch = Orchestrator(Registry([WORKFLOW]), Executor({}), store, concurrency=32)
            report, secs = timed(orch.process_pending_tasks)
            assert report.succeeded == N, report.as_dict()
            with db.read() as tx:
                assert tx.sql("SELECT COUNT(*) AS n FROM done")[0]["n"] == N
                assert tx.sql("SELECT COUNT(*) AS n FROM turing_runs")[0]["n"] == N
            rate = N / secs
            print(f"  {kind:8}: {rate:8,.0f} tasks/s  ({secs:.1f} s for {N:,}, discovery included)")


if __name__ == "__main__":
    main()
