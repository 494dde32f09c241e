"""Huey with SqliteHuey: N tasks through one in-process consumer with 32 worker threads.

`--variant noop` (default): each task returns its input. `--variant llm`: each task does the
work of Turing's LLM variant (see `_peer.py`): the fake model call, fence stripping, pydantic
validation, then the result row and a log row written into the same SQLite file as Huey's
queue, in one transaction, through a connection per worker thread (WAL, `synchronous=NORMAL`,
a 30 s busy timeout); the task returns the result, which Huey stores.

Timed: from the first enqueue until the consumer has stored the result of the last task:
enqueue all N tasks, then start the consumer (its 32 threads) and wait for the last completion
signal. Not timed: creating the SQLite file and stopping the consumer. The consumer is stopped
gracefully once every task has signalled completion; the temp folder is removed.

SQLite runs in WAL mode (Huey's default) with `synchronous=NORMAL`, the setting Turing uses, so
both pay for the same durability; `--synchronous full` keeps SQLite's own default (an fsync per
commit), which is what a stock SqliteHuey does.
Run: `.venv-peers/bin/python benchmarks/peers/huey_bench.py [N] [--variant noop|llm]
[--synchronous normal|full]`.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import threading
from pathlib import Path

from _peer import (
    clock,
    interrupt_on_signals,
    item_text,
    llm_work,
    make_parser,
    report,
    run_main,
    sqlite_setup_and_count,
    sqlite_writer,
)
from huey import SqliteHuey, signals
from huey.consumer import Consumer
from huey.storage import SqliteStorage


class NormalSyncStorage(SqliteStorage):
    """SqliteStorage with `PRAGMA synchronous = NORMAL` on every connection."""

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn


class NormalSyncHuey(SqliteHuey):
    storage_class = NormalSyncStorage


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    args = parser.parse_args()
    n: int = args.n
    logging.getLogger("huey").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        kind = NormalSyncHuey if args.synchronous == "normal" else SqliteHuey
        path = str(Path(folder) / "huey.db")
        huey = kind("bench", filename=path)
        write = sqlite_writer(path)
        if args.variant == "llm":
            sqlite_setup_and_count(path)

        @huey.task()
        def noop(value: dict[str, int]) -> dict[str, int]:
            return value

        @huey.task()
        def label(item_id: int, text: str) -> dict[str, object]:
            result, log = llm_work(item_id, text)
            write(result, log)  # one transaction: the result row and the log row
            return result

        lock = threading.Lock()
        all_done = threading.Event()
        counts = {"complete": 0, "error": 0}

        @huey.signal(signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)
        def on_finish(signal: str, task: object, exc: object = None) -> None:
            with lock:
                counts["complete" if signal == signals.SIGNAL_COMPLETE else "error"] += 1
                if counts["complete"] + counts["error"] >= n:
                    all_done.set()

        consumer = Consumer(huey, workers=args.concurrency, worker_type="thread", periodic=False)
        running = False
        try:
            started = clock()
            for i in range(1, n + 1):
                if args.variant == "llm":
                    label(i, item_text(i))
                else:
                    noop({"item_id": i, "value": i * 7})
            enqueued = clock() - started
            consumer.start()
            running = True
            interrupt_on_signals()  # start() installed handlers only Consumer.run() reads
            if not all_done.wait(timeout=max(600.0, n / 10)):
                raise SystemExit(f"huey: timed out with {counts}")
            secs = clock() - started
            assert counts == {"complete": n, "error": 0}, counts
            assert huey.storage.result_store_size() == n
            if args.variant == "llm":
                sqlite_setup_and_count(path, n)
        finally:
            if running:
                consumer.stop(graceful=True)
            huey.storage.close()
    note = "" if args.synchronous == "normal" else "stock SQLite settings"
    label_ = "huey(sqlite)" if args.variant == "noop" else "huey(sqlite, llm)"
    report(label_, n, secs, enqueued, note)


if __name__ == "__main__":
    run_main(main)
