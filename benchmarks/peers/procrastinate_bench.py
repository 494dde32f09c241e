"""Procrastinate on PostgreSQL: N async tasks through one worker with concurrency 32.

`--variant noop` (default): each task returns its input. `--variant llm`: each task does the
work of Turing's LLM variant (see `_peer.py`): the fake model call, fence stripping, pydantic
validation, then the result row and a log row written into the same database, in one
transaction on a connection from Procrastinate's own pool (`connector.pool`; the default
pool is then 2 x concurrency + 2, so that neither the worker nor a task waits for one).

A fresh database is created on 127.0.0.1, Procrastinate's schema applied to it, and the
database dropped at the end (also after a failure or SIGINT). Timed: deferring all N jobs
(`batch_defer_async` in chunks of 1,000, its fastest way; `--one-by-one` for a `defer_async`
per job) and then `run_worker_async(concurrency=32, wait=False)`, which returns once the
queue is empty. Not timed: creating the database, applying the schema, opening the pool
(34 connections, so that no slot waits for one).
The task is `async def` (Procrastinate's native form: one event loop, 32 slots) and returns its
arguments; Procrastinate keeps no results, so the check is that all N jobs ended `succeeded`.
Run: `.venv-peers/bin/python benchmarks/peers/procrastinate_bench.py [N] [--variant noop|llm]
[--pool-size 34]`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import procrastinate
import psycopg
from _peer import (
    INSERT_LOG,
    INSERT_RESULT,
    LOG_DDL,
    RESULTS_DDL,
    clock,
    item_text,
    llm_work,
    make_parser,
    pg_dsn,
    pyformat,
    report,
    run_main,
    with_database,
)


async def run(
    dsn: str, n: int, concurrency: int, pool_size: int, batch: bool, *, variant: str
) -> None:
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=pool_size, max_size=pool_size)
    app = procrastinate.App(connector=connector)

    @app.task(name="noop")
    async def noop(item_id: int, value: int) -> dict[str, int]:
        return {"item_id": item_id, "value": value}

    @app.task(name="label")
    async def label(item_id: int, text: str) -> dict[str, object]:
        result, log = llm_work(item_id, text)
        async with connector.pool.connection() as conn, conn.transaction():
            await conn.execute(pyformat(INSERT_RESULT), result)
            await conn.execute(pyformat(INSERT_LOG), log)
        return result

    task, args = (
        (noop, lambda i: {"item_id": i, "value": i * 7})
        if variant == "noop"
        else (label, lambda i: {"item_id": i, "text": item_text(i)})
    )
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        if variant == "llm":
            async with connector.pool.connection() as conn:
                await conn.execute(RESULTS_DDL)
                await conn.execute(LOG_DDL.format(id_type="BIGSERIAL"))
        started = clock()
        if batch:
            for start in range(1, n + 1, 1000):
                chunk = range(start, min(n, start + 999) + 1)
                await task.batch_defer_async(*(args(i) for i in chunk))
        else:
            for i in range(1, n + 1):
                await task.defer_async(**args(i))
        enqueued = clock() - started
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        secs = clock() - started
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY status"
        ).fetchall()
        if variant == "llm":
            for table in ("labels", "model_calls"):
                count = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                assert count is not None and count[0] == n, (table, count)
    assert dict(rows) == {"succeeded": n}, rows
    how = "batch_defer_async" if batch else "defer_async per job"
    name = "procrastinate(postgres)" if variant == "noop" else "procrastinate(postgres, llm)"
    report(name, n, secs, enqueued, how)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--pool-size", type=int, default=0, help="default: concurrency + 2 (llm: 2 x that - 2)"
    )
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
        pool_size = args.pool_size or args.concurrency * (2 if args.variant == "llm" else 1) + 2
        asyncio.run(
            run(
                with_database(admin_dsn, name),
                args.n,
                args.concurrency,
                pool_size,
                not args.one_by_one,
                variant=args.variant,
            )
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    run_main(main)
