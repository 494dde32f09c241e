"""Period budgets: what a reservation costs per model call, and how close a fleet gets to a
budget without going over.

4 worker processes reserve a call's quote against one shared "N USD/day" budget and settle
it at the call's real cost (a random 30-100% of the quote, as answers shorter than
`max_tokens` are), as fast as they can, until the budget refuses them. Prints, per backend:
reserve+settle round trips per second over the fleet, the median and p99 of one round trip,
what was spent against the limit (never above it: every call settles at or below its
quote), and how many reservations were refused once it was nearly full.

Run: `.venv/bin/python benchmarks/budgets.py [sqlite] [postgres] [--workers 4]
[--calls 2000]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import time

from _common import backends, database
from turing.actors.base import Usage
from turing.limits import LimitsConfig
from turing.limits.spending import Held, PeriodBudgets
from turing.store.db import connect
from turing.store.migrations import migrate

QUOTE = 0.01  # USD a call may cost at most


def worker(url: str, name: str, calls: int, limit: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    db = connect(url)
    budgets = PeriodBudgets(db, LimitsConfig(budget={"global": f"{limit} USD/day"}).budgets(),
                            holder=name)  # fmt: skip
    rng = random.Random(name)
    took: list[float] = []
    refused = 0
    for _ in range(calls):
        started = time.perf_counter()
        held = budgets.reserve(budgets.budgets, Usage(500, 200, 1, QUOTE))
        if isinstance(held, Held):
            budgets.settle(held, Usage(500, 100, 1, QUOTE * rng.uniform(0.3, 1.0)))
        else:
            refused += 1
        took.append(time.perf_counter() - started)
    db.close()
    out.put((took, refused))


def run(kind: str, workers: int, calls: int) -> None:
    limit = round(workers * calls * QUOTE * 0.5, 2)  # about 3/4 of the calls fit
    with database(kind) as (url, db):
        migrate(db)
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [
            mp.Process(target=worker, args=(url, f"w{i}", calls, limit, out))
            for i in range(workers)
        ]
        started = time.perf_counter()
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
        budgets = PeriodBudgets(db, LimitsConfig(budget={"global": f"{limit} USD/day"}).budgets(),
                                holder="bench")  # fmt: skip
        [state] = budgets.states()
    took = sorted(t for ts, _ in results for t in ts)
    p50, p99 = statistics.median(took) * 1000, took[int(len(took) * 0.99)] * 1000
    refused = sum(r for _, r in results)
    total = workers * calls
    print(
        f"{kind:8} {workers} workers x {calls} calls: {total / elapsed:,.0f} reserve+settle/s, "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
        f"spent {state.spent:.4f} of {limit:.2f} USD ({state.spent / limit:.1%}), "
        f"held {state.held:.4f}, {refused} refused"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backends", nargs="*")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    for kind in backends():
        run(kind, args.workers, args.calls)


if __name__ == "__main__":
    main()
