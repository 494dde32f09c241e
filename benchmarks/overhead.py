"""Per-task overhead: 20,000 tasks through the whole path in one process, two variants.

- `noop`: one no-op script step. Each task is discovered, enqueued, claimed, its input
  validated, the script run, the output validated, the sink row written and the run recorded
  in history.
- `llm`: the path users take, one LLM step answered by an in-process fake model
  (`turing.FakeModel` with a function, no latency): the prompt rendered from the input, the
  call made and recorded in history (messages, raw answer, tokens), the answer repaired where
  needed (every other answer comes in a ```json fence, as real models like to send it) and
  validated against the output contract, the sink row written and the run recorded.

On SQLite and on PostgreSQL (a fresh schema, dropped afterwards), concurrency 32. Prints
tasks/s per backend and variant, timed from discovery to the last sink row and history record.
Run: `.venv/bin/python benchmarks/overhead.py [sqlite|postgres] [noop|llm] [N]`.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel

from _common import backends, database, timed
from peers._peer import label_answer  # the peers' fake model is the same function
from turing import (
    Executor,
    FakeModel,
    LLMStep,
    ModelRequest,
    Orchestrator,
    Registry,
    ScriptStep,
    Sink,
    Source,
    Workflow,
)
from turing.store.db import Database
from turing.store.store import Store

N = next((int(a) for a in sys.argv[1:] if a.isdigit()), 20_000)
VARIANTS = [a for a in sys.argv[1:] if a in ("noop", "llm")] or ["noop", "llm"]


class Item(BaseModel):
    item_id: int
    value: int


class ItemText(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


def noop(data: dict[str, int]) -> dict[str, int]:
    return {"item_id": data["item_id"], "value": data["value"]}


def fake_model(request: ModelRequest) -> str:
    v = request.variables
    return label_answer(int(v["item_id"]), str(v["text"]))


NOOP = Workflow(
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

LLM = Workflow(
    "label",
    input=ItemText,
    output=Label,
    subject_key="item_id",
    source=Source(
        sql="SELECT item_id, text FROM texts i WHERE NOT EXISTS "
        "(SELECT 1 FROM labels l WHERE l.item_id = i.item_id)"
    ),
    sink=Sink.sql("INSERT INTO labels (item_id, label) VALUES (:item_id, :label)"),
    steps=[LLMStep("label", prompt="Label item {{ item_id }}: {{ text }}", actor="model")],
)


def setup(db: Database, variant: str) -> None:
    with db.tx() as tx:
        if variant == "noop":
            tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
            tx.sql("CREATE TABLE done (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        else:
            tx.sql("CREATE TABLE texts (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
            tx.sql("CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
        for start in range(0, N, 5000):
            ids = range(start + 1, min(N, start + 5000) + 1)
            if variant == "noop":
                values = ", ".join(f"({i}, {i * 7})" for i in ids)
                tx.sql(f"INSERT INTO items (item_id, value) VALUES {values}")
            else:
                values = ", ".join(f"({i}, 'item number {i}')" for i in ids)
                tx.sql(f"INSERT INTO texts (item_id, text) VALUES {values}")


def check(db: Database, variant: str) -> None:
    table = "done" if variant == "noop" else "labels"
    with db.read() as tx:
        assert tx.sql(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == N
        assert tx.sql("SELECT COUNT(*) AS n FROM turing_runs")[0]["n"] == N
        calls = tx.sql("SELECT COUNT(*) AS n FROM turing_calls")[0]["n"]
        assert calls == (0 if variant == "noop" else N), calls
        if variant == "llm":
            label = tx.sql("SELECT label FROM labels WHERE item_id = 2")[0]["label"]
            assert label == "len3", label


def main() -> None:
    print(
        f"overhead: {N:,} tasks per run, validation + history + sink, one process, "
        "concurrency 32 (noop: a no-op script step; llm: one LLM step, in-process fake model)"
    )
    for kind in backends():
        for variant in VARIANTS:
            with database(kind) as (_url, db):
                setup(db, variant)
                if variant == "noop":
                    workflow, executor = NOOP, Executor({})
                else:
                    workflow, executor = LLM, Executor({"model": FakeModel(fake_model)})
                store = Store(db)
                orch = Orchestrator(Registry([workflow]), executor, store, concurrency=32)
                report, secs = timed(orch.process_pending_tasks)
                assert report.succeeded == N, report.as_dict()
                check(db, variant)
                rate = N / secs
                print(
                    f"  {kind:8} {variant:4}: {rate:8,.0f} tasks/s  "
                    f"({secs:.1f} s for {N:,}, discovery included)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
