"""DBOS with a SQLite system database: N workflows on one queue, 32 at a time, one process.

`--variant noop` (default): each workflow returns its input. `--variant llm`: each workflow
does the work of Turing's LLM variant (see `_peer.py`) with the model call, fence stripping and
validation in a `@DBOS.step` (so DBOS records its output, as Turing records the call), then
writes the result row and a log row into the same SQLite file in one transaction, through a
connection per thread (WAL, `synchronous=NORMAL`, 30 s busy timeout).

Timed: enqueueing all N workflows (`queue.enqueue`, one each) and then waiting for every
result (`handle.get_result()` in enqueue order, polling every 0.01 s); DBOS's queue thread
starts dequeueing while enqueueing goes on. Not timed: creating the SQLite system database
(`DBOS.launch()`) and registering the queue. DBOS is destroyed and the temp folder removed
at the end.

Settings: the queue has `worker_concurrency=32` and polls every 0.01 s (DBOS's default of 1 s
caps it at 32 dequeues a second, about 30 tasks/s; `--polling-interval` changes it). SQLite
runs in WAL mode with `synchronous=NORMAL`, the setting Turing uses; stock DBOS keeps SQLite's
rollback journal with an fsync per commit (`--synchronous full`, roughly half as fast here).
Run: `.venv-peers/bin/python benchmarks/peers/dbos_bench.py [N] [--variant noop|llm]
[--synchronous normal|full]`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _peer import (
    clock,
    item_text,
    llm_work,
    make_parser,
    report,
    run_main,
    sqlite_setup_and_count,
    sqlite_writer,
)
from dbos import DBOS, DBOSConfig


def use_wal_normal() -> None:
    """Every new SQLite connection in WAL mode with `synchronous=NORMAL`, as Turing's.

    DBOS keeps creating its own engine (pool, IMMEDIATE transactions, busy timeout); this
    listener on all engines only adds the two pragmas. Stock DBOS leaves SQLite's defaults:
    a rollback journal and an fsync per commit (`--synchronous full`).
    """

    @sa.event.listens_for(sa.Engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--polling-interval", type=float, default=0.01, help="queue poll (s)")
    parser.add_argument("--result-polling", type=float, default=0.01, help="get_result poll (s)")
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    args = parser.parse_args()
    n: int = args.n
    with tempfile.TemporaryDirectory() as folder:
        config: DBOSConfig = {
            "name": "turing-bench-peers",
            "system_database_url": f"sqlite:///{Path(folder) / 'dbos.sqlite'}",
            "log_level": "WARNING",
        }
        if args.synchronous == "normal":
            use_wal_normal()
        DBOS(config=config)

        path = str(Path(folder) / "dbos.sqlite")
        write = sqlite_writer(path)

        @DBOS.workflow()
        def noop(value: dict[str, int]) -> dict[str, int]:
            return value

        @DBOS.step()
        def call_model(item_id: int, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
            return llm_work(item_id, text)

        @DBOS.workflow()
        def label(item_id: int, text: str) -> dict[str, Any]:
            result, log = call_model(item_id, text)
            write(result, log)  # one transaction: the result row and the log row
            return result

        try:
            DBOS.launch()
            if args.variant == "llm":
                sqlite_setup_and_count(path)
            logging.getLogger("dbos").setLevel(logging.WARNING)
            queue = DBOS.register_queue(
                "bench",
                worker_concurrency=args.concurrency,
                polling_interval_sec=args.polling_interval,
            )
            started = clock()
            if args.variant == "llm":
                handles: list[Any] = [
                    queue.enqueue(label, i, item_text(i)) for i in range(1, n + 1)
                ]
            else:
                handles = [
                    queue.enqueue(noop, {"item_id": i, "value": i * 7}) for i in range(1, n + 1)
                ]
            enqueued = clock() - started
            results = [h.get_result(polling_interval_sec=args.result_polling) for h in handles]
            secs = clock() - started
            if args.variant == "llm":
                sqlite_setup_and_count(path, n)
        finally:
            DBOS.destroy(destroy_registry=True)
    if args.variant == "llm":
        assert results == [{"item_id": i, "label": "len3"} for i in range(1, n + 1)]
    else:
        assert results == [{"item_id": i, "value": i * 7} for i in range(1, n + 1)]
    note = f"queue polling {args.polling_interval:g} s"
    if args.synchronous == "full":
        note += ", stock SQLite settings"
    report(
        "dbos(sqlite)" if args.variant == "noop" else "dbos(sqlite, llm)", n, secs, enqueued, note
    )


if __name__ == "__main__":
    run_main(main)
