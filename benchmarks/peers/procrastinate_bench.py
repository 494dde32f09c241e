"""Procrastinate on PostgreSQL: N no-op async tasks through one worker with concurrency 32.

A fresh database is created on 127.0.0.1, Procrastinate's schema applied to it, and the
database dropped at the end (also after a failure or SIGINT). Timed: deferring all N jobs
(`batch_defer_async` in chunks of 1,000, its fastest way; `--one-by-one` for a `defer_async`
per job) and then `run_worker_async(concurrency=32, wait=False)`, which returns once the
queue is empty. Not timed: creating the database, applying the schema, opening the pool
(34 connections, so that no slot waits for one).
The task is `async def` (Procrastinate's native form: one event loop, 32 slots) and returns its
arguments; Procrastinate keeps no results, so the check is that all N jobs ended `succeeded`.
Run: `.venv-peers/bin/python benchmarks/peers/procrastinate_bench.py [N] [--pool-size 34]`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import procrastinate
import psycopg
from _peer import clock, make_parser, pg_dsn, report, run_main, with_database


async def run(dsn: str, n: int, concurrency: int, pool_size: int, batch: bool) -> None:
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=pool_size, max_size=pool_size)
    app = procrastinate.App(connector=connector)

    @app.task(name="noop")
    async def noop(item_id: int, value: int) -> dict[str, int]:
        return {"item_id": item_id, "value": value}

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        started = clock()
        if batch:
            for start in range(1, n + 1, 1000):
                chunk = range(start, min(n, start + 999) + 1)
                await noop.batch_defer_async(*({"item_id": i, "value": i * 7} for i in chunk))
        else:
            for i in range(1, n + 1):
                await noop.defer_async(item_id=i, value=i * 7)
        enqueued = clock() - started
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        secs = clock() - started
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY status"
        ).fetchall()
    assert dict(rows) == {"succeeded": n}, rows
    how = "batch_defer_async" if batch else "defer_async per job"
    report("procrastinate(postgres)", n, secs, enqueued, how)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--pool-size", type=int, default=0, help="default: concurrency + 2")
    parser.add_argument(
        "--one-by-one", action="store_true", help="defer_async per job instead of batches"
    )
    args = parser.parse_args()
    # Quiet the "App is instantiated in the main module" warning: the worker runs in-process.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    admin_dsn = pg_dsn()
    name = f"bench_procrastinate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        pool_size = args.pool_size or args.concurrency + 2
        asyncio.run(
            run(
                with_database(admin_dsn, name),
                args.n,
                args.concurrency,
                pool_size,
                not args.one_by_one,
            )
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    run_main(main)
