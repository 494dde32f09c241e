"""What metrics and traces cost per task: the same work unobserved, with Prometheus metrics,
with tracing on the OpenTelemetry API's no-op provider (the API installed, no SDK: what
`tracing = "auto"` does when the application set no provider), with tracing recorded by the
SDK (spans built and ended, no exporter), and with both.

- `executor`: N runs of a one-LLM-step workflow on an in-process fake model, no database
  (the observer's share is largest here); the metrics variant also counts each run
  (`Metrics.finished`, as the processor does after a commit). Prints µs per task.
- `sqlite`: N tasks end to end (discover, claim, run, sink, history) on SQLite,
  concurrency 32, as benchmarks/overhead.py's llm variant. Prints tasks/s.

Run: `.venv/bin/python benchmarks/observe.py [executor|sqlite] [N]` (default both, 5,000).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

from _common import database, timed
from overhead import LLM, fake_model
from turing import Executor, FakeModel, Orchestrator, Registry
from turing.observe import NOOP, Metrics, Observer, Tracing, combine
from turing.store.store import Store

N = next((int(a) for a in sys.argv[1:] if a.isdigit()), 5_000)
PARTS = [a for a in sys.argv[1:] if a in ("executor", "sqlite")] or ["executor", "sqlite"]


def sdk_tracing() -> Tracing:
    from opentelemetry.sdk.trace import TracerProvider

    return Tracing(TracerProvider())  # records every span, exports none


VARIANTS: dict[str, Callable[[], Observer]] = {
    "none": lambda: NOOP,
    "metrics": Metrics,
    "tracing (API, no provider)": Tracing,
    "tracing (SDK, recording)": sdk_tracing,
    "metrics + tracing (SDK)": lambda: combine(Metrics(), sdk_tracing()),
}


def executor_only(observer: Observer) -> float:
    """µs per run of the executor, counted by the observer as a completed task."""
    executor = Executor({"model": FakeModel(fake_model)}, observer=observer)

    async def runs() -> None:
        for i in range(1, N + 1):
            result = await executor.run(
                LLM, {"item_id": i, "text": f"item number {i}"}, subject=str(i), task_id=i
            )
            observer.finished(None, result, "succeeded")

    started = time.perf_counter()
    asyncio.run(runs())
    return (time.perf_counter() - started) / N * 1e6


def end_to_end(observer: Observer) -> float:
    with database("sqlite") as (_url, db):
        with db.tx() as tx:
            tx.sql("CREATE TABLE texts (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
            tx.sql("CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
            values = ", ".join(f"({i}, 'item number {i}')" for i in range(1, N + 1))
            tx.sql(f"INSERT INTO texts (item_id, text) VALUES {values}")
        executor = Executor({"model": FakeModel(fake_model)}, observer=observer)
        orch = Orchestrator(Registry([LLM]), executor, Store(db), concurrency=32)
        report, secs = timed(orch.process_pending_tasks)
        assert report.succeeded == N, report.as_dict()
        return N / secs


def main() -> None:
    print(f"observe: {N:,} tasks per variant, one LLM step on an in-process fake model")
    if "executor" in PARTS:
        print("  executor only (no database), µs per task:")
        base = None
        for name, make in VARIANTS.items():
            us = executor_only(make())
            base = base or us
            print(f"    {name:28} {us:7.1f} µs  (+{us - base:5.1f} µs)", flush=True)
    if "sqlite" in PARTS:
        print("  end to end on SQLite, concurrency 32, tasks/s:")
        for name, make in VARIANTS.items():
            print(f"    {name:28} {end_to_end(make()):7,.0f} tasks/s", flush=True)


if __name__ == "__main__":
    main()
