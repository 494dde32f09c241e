"""Dashboard page render times with 1,000,000 tasks and 1,000,000 runs in history.

    .venv/bin/python benchmarks/dashboard.py [sqlite] [postgres] [--rows N] [--requests K]

Fills a fresh database (a SQLite file, or a PostgreSQL schema created and dropped here;
never the test tables) in bulk: a recursive CTE on SQLite, generate_series on PostgreSQL.
Tasks are spread over 30 days in 6 workflows (90% succeeded, 6% failed with four error
kinds, the rest pending, running, held for review or submitted); each task has one run, and
the runs of the last two days have one model call each. Then it renders every list page
through the ASGI app in process (httpx via Starlette's TestClient: templates included,
network excluded) K times after one warm-up and prints the median and p95. Target: under
300 ms for every list page.
"""

from __future__ import annotations

import statistics
import sys
import time

from _common import backends, database, timed
from turing.store.store import Store

DAY = 86_400.0
SPAN = 30 * DAY
WORKFLOWS = 6
KINDS = ("output_invalid", "script_crash", "actor", "sink")
PAGES = [
    ("overview", "/"),
    ("tasks", "/tasks"),
    ("tasks, page 5000 (keyset)", "/tasks?before={deep}"),
    ("tasks status=failed", "/tasks?status=failed"),
    ("tasks workflow", "/tasks?workflow=wf_2"),
    ("tasks workflow+status", "/tasks?workflow=wf_2&status=failed"),
    ("tasks workflow=review", "/tasks?workflow=wf_4&status=review"),
    ("tasks reason", "/tasks?reason=script_crash"),
    ("tasks updated 1h", "/tasks?since=1h"),
    ("tasks subject prefix", "/tasks?q=12345"),
    ("failures", "/failures"),
    ("reviews", "/reviews"),
    ("schedules", "/schedules"),
    ("charts 24h", "/charts?window=24h"),
    ("charts 7d", "/charts?window=7d"),
    ("task (detail)", "/tasks/{mid}"),
    ("run (detail)", "/runs/{mid}"),
]

# One fill for both dialects; {series} is the row numbers 1..n as column i.
SERIES = {
    "sqlite": "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)"
    " SELECT i FROM s) AS g",
    "postgres": "generate_series(1, CAST(:n AS BIGINT)) AS g(i)",
}
FILL = [
    """
INSERT INTO turing_tasks (id, workflow, version, subject, input, status, priority, attempts,
    lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at)
SELECT i, 'wf_' || (i % 6), 1, CAST(i AS TEXT), '{{"item_id": ' || i || '}}',
    CASE WHEN i % 100 < 90 THEN 'succeeded' WHEN i % 100 < 96 THEN 'failed'
         WHEN i % 100 < 98 THEN 'pending' WHEN i % 100 < 99 THEN 'running'
         WHEN i % 200 < 199 THEN 'review' ELSE 'submitted' END,
    0, 1,
    CASE WHEN i % 100 = 98 THEN 'worker-' || (i % 4) END,
    CASE WHEN i % 100 = 98 THEN CAST(:now AS DOUBLE PRECISION) + 60 END,
    CASE WHEN i % 100 >= 90 AND i % 100 < 96 THEN
        (CASE i % 4 WHEN 0 THEN 'output_invalid' WHEN 1 THEN 'script_crash'
                    WHEN 2 THEN 'actor' ELSE 'sink' END) || ': something went wrong with ' || i
    END,
    :now - :span + i * :span / :n, :now - :span + i * :span / :n + 2,
    :now - :span + i * :span / :n + 2
FROM {series}
""",
    """
INSERT INTO turing_runs (id, task_id, workflow, version, fingerprint, subject, status,
    error_kind, error, input, output, worker, started_at, finished_at, duration_ms, calls,
    input_tokens, output_tokens, cost)
SELECT i, i, 'wf_' || (i % 6), 1, 'fp', CAST(i AS TEXT),
    CASE WHEN i % 100 >= 90 AND i % 100 < 96 THEN 'failed' ELSE 'succeeded' END,
    NULL, NULL, '{{}}', '{{}}', 'worker-' || (i % 4),
    :now - :span + i * :span / :n, :now - :span + i * :span / :n + 1.5, 1500, 1,
    400, 80, 0.0001 * (1 + i % 7)
FROM {series}
""",
    """
INSERT INTO turing_calls (run_id, step, number, actor, messages, raw, input_tokens,
    output_tokens, latency_ms, violations)
SELECT id, 'step_' || (id % 3), 1, 'ollama:qwen', '[]', '{{}}', 400, 80,
    200 + (id * 7919) % 2000, '[]'
FROM turing_runs WHERE finished_at >= :now - 2 * 86400
""",
    """
INSERT INTO turing_reviews (task_id, run_id, workflow, subject, output, reason, held_at)
SELECT id, id, workflow, subject, '{{"ok": true}}', 'needs_human', updated_at
FROM turing_tasks WHERE status = 'review'
""",
]
PG_SEQUENCES = [
    "SELECT setval(pg_get_serial_sequence('turing_tasks', 'id'), :n)",
    "SELECT setval(pg_get_serial_sequence('turing_runs', 'id'), :n)",
]


def fill(store: Store, n: int) -> float:
    now = time.time()
    params = {"n": n, "now": now, "span": SPAN}
    statements = [sql.format(series=SERIES[store.dialect]) for sql in FILL]
    if store.dialect == "postgres":
        statements += PG_SEQUENCES
    with store.db.tx() as tx:
        for sql in statements:
            tx.sql(sql, params)
    if store.dialect == "sqlite":
        with store.db.tx() as tx:
            tx.sql("ANALYZE")
    else:  # fresh statistics and a visibility map (index-only scans), as autovacuum would
        import psycopg

        with psycopg.connect(store.db.url.split("?")[0], autocommit=True) as conn:
            schema = store.db.url.split("schema=")[1]
            for table in ("turing_tasks", "turing_runs", "turing_calls", "turing_reviews"):
                conn.execute(f'VACUUM ANALYZE "{schema}".{table}')
    return now


def measure(kind: str, n: int, requests: int) -> list[tuple[str, float, float, int]]:
    from starlette.testclient import TestClient

    from turing.dashboard import create_app
    from turing.store import open_store

    with database(kind) as (url, db):
        db.close()
        store = open_store(url)
        try:
            _, seconds = timed(lambda: fill(store, n))
            print(f"{kind}: filled {n:,} tasks and {n:,} runs in {seconds:.1f} s", flush=True)
            client = TestClient(create_app(store=store), base_url="http://127.0.0.1")
            out = []
            for label, template in PAGES:
                path = template.format(deep=n - 5000 * 50, mid=n // 2)
                times, status = [], 0
                for i in range(requests + 1):
                    started = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - started
                    status = response.status_code
                    if i:  # the first one warms caches
                        times.append(elapsed * 1000)
                times.sort()
                p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                out.append((label, statistics.median(times), p95, status))
            return out
        finally:
            store.close()


def main() -> None:
    args = sys.argv[1:]
    n = int(args[args.index("--rows") + 1]) if "--rows" in args else 1_000_000
    k = int(args[args.index("--requests") + 1]) if "--requests" in args else 9
    results = {kind: measure(kind, n, k) for kind in backends()}
    kinds = list(results)
    print(f"\nDashboard pages, {n:,} tasks + {n:,} runs, {k} requests each (ms):")
    head = f"{'page':30}" + "".join(f"{kind + ' p50':>14}{kind + ' p95':>14}" for kind in kinds)
    print(head)
    print("-" * len(head))
    for i, (label, _, _, _) in enumerate(results[kinds[0]]):
        cells = ""
        for kind in kinds:
            _, p50, p95, status = results[kind][i]
            flag = "" if status == 200 else f" ({status})"
            cells += f"{p50:>14.1f}{p95:>14.1f}{flag}"
        print(f"{label:30}{cells}")
    worst = max(p95 for r in results.values() for _, _, p95, _ in r)
    print(f"\nworst p95: {worst:.0f} ms (target: under 300 ms for every list page)")


if __name__ == "__main__":
    main()
