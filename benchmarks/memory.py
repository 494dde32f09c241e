"""Memory: 1,000,000 no-op tasks discovered and processed in one run; peak RSS.

Run: `.venv/bin/python benchmarks/memory.py [sqlite|postgres] [N]` (default sqlite, 1,000,000).
Target: peak RSS at most 200 MB for the whole process (interpreter and libraries included).
"""

from __future__ import annotations

import resource
import sys
import time

from _common import backends, database
from overhead import WORKFLOW
from turing import Executor, Orchestrator, Registry
from turing.store.store import Store

N = next((int(a) for a in sys.argv[1:] if a.isdigit()), 1_000_000)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    kinds = [k for k in backends() if k in sys.argv[1:]] or ["sqlite"]
    for kind in kinds:
        with database(kind) as (_url, db):
            store = Store(db)
            with db.tx() as tx:
                tx.sql("CREATE TABLE items (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
                tx.sql("CREATE TABLE done (item_id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
                if kind == "postgres":
                    tx.sql(f"INSERT INTO items SELECT g, g * 7 FROM generate_series(1, {N}) g")
                else:
                    tx.sql(
                        "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g"
                        f" WHERE i < {N}) INSERT INTO items SELECT i, i * 7 FROM g"
                    )
            before = rss_mb()
            orch = Orchestrator(Registry([WORKFLOW]), Executor({}), store, concurrency=32)
            started = time.perf_counter()
            report = orch.process_pending_tasks()
            elapsed = time.perf_counter() - started
            assert report.succeeded == N, report.as_dict()
            peak = rss_mb()
            verdict = "met" if peak <= 200 else "NOT met"
            print(
                f"memory ({kind}): {N:,} no-op tasks discovered and processed in one run in "
                f"{elapsed:.0f}s ({N / elapsed:,.0f} tasks/s); peak RSS {peak:.0f} MB "
                f"(before the run {before:.0f} MB); target <= 200 MB: {verdict}"
            )


if __name__ == "__main__":
    main()
