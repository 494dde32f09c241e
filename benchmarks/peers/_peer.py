"""Shared bits of the peer benchmarks: arguments, the report line, the PostgreSQL DSN, and the
LLM variant's work.

Runs in the peers venv (`.venv-peers`), so it imports nothing from Turing (pydantic, which
Turing's contracts use too, is imported only by the LLM variant). `label_answer` is also the
fake model of Turing's side (`benchmarks/overhead.py` imports it from here), so both answer
with the same text.

The LLM variant (`--variant llm`) is what Turing's `llm` variant does in each task, done the
peer's way inside the peer's task: render the prompt, call an in-process fake model (no
latency), strip a ```json fence when there is one (every other answer), validate the JSON
against a pydantic model, then write the result row and a log row (prompt, raw answer,
latency, tokens) into the peer's database in one transaction.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

PG_DSN = os.environ.get("TURING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """N (default 20,000) and --concurrency (default 32); a script may add its own options."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="number of tasks")
    parser.add_argument("--concurrency", type=int, default=32, help="threads or slots")
    parser.add_argument(
        "--variant",
        choices=["noop", "llm"],
        default="noop",
        help="noop: returns its input; llm: fake model call, validation, result + log rows",
    )
    return parser


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so that `finally` blocks clean up.

    Needed because a child started in the background inherits SIGINT ignored, and because
    some peers (Huey's consumer) install handlers that only their own run loop reads.
    """

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def run_main(main: Callable[[], None]) -> None:
    """Run `main`; once an interrupt has run its clean-up, exit without waiting for threads.

    A peer's worker threads may still be blocked then (DBOS's executor), and waiting for them
    at interpreter exit would keep the process alive.
    """
    interrupt_on_signals()
    try:
        main()
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); cleaned up", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)


def pg_dsn() -> str:
    """The benchmark PostgreSQL DSN; refuses anything but a loopback host."""
    host = urlsplit(PG_DSN).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing non-loopback PostgreSQL host {host!r}")
    return PG_DSN


def with_database(dsn: str, name: str) -> str:
    """The same DSN pointing at another database."""
    parts = urlsplit(dsn)
    return parts._replace(path=f"/{name}").geturl()


def label_answer(item_id: int, text: str) -> str:
    """The fake model's answer (Turing's side uses this function too): JSON, fenced for even
    ids."""
    body = f'{{"item_id": {item_id}, "label": "len{len(text.split())}"}}'
    return f"Here you go:\n```json\n{body}\n```" if item_id % 2 == 0 else body


def item_text(i: int) -> str:
    """The input text of item i, as in Turing's benchmark."""
    return f"item number {i}"


FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.S)
RESULTS_DDL = "CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)"
LOG_DDL = (
    "CREATE TABLE model_calls (id {id_type} PRIMARY KEY, item_id INTEGER NOT NULL, "
    "prompt TEXT NOT NULL, raw TEXT NOT NULL, latency_ms REAL NOT NULL, "
    "input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL)"
)


@functools.cache
def label_model() -> Any:
    """The output contract, a pydantic model (imported late: the noop variant needs none)."""
    from pydantic import BaseModel

    class Label(BaseModel):
        item_id: int
        label: str

    return Label


INSERT_RESULT = "INSERT INTO labels (item_id, label) VALUES (:item_id, :label)"
INSERT_LOG = (
    "INSERT INTO model_calls (item_id, prompt, raw, latency_ms, input_tokens, output_tokens) "
    "VALUES (:item_id, :prompt, :raw, :latency_ms, :input_tokens, :output_tokens)"
)


def pyformat(sql: str) -> str:
    """`:name` placeholders as psycopg's `%(name)s`."""
    return re.sub(r":(\w+)", r"%(\1)s", sql)


def sqlite_writer(path: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """Writes a result row and its log row in one transaction, on a connection per thread
    (WAL as set by the peer, `synchronous=NORMAL`, a 30 s busy timeout)."""
    local = threading.local()

    def write(result: dict[str, Any], log: dict[str, Any]) -> None:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, timeout=30)
            conn.execute("PRAGMA synchronous = NORMAL")
            local.conn = conn
        with conn:
            conn.execute(INSERT_RESULT, result)
            conn.execute(INSERT_LOG, log)

    return write


def sqlite_setup_and_count(path: str, n: int | None = None) -> None:
    """Create the result and log tables (n None), or check both hold n rows."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        with conn:
            if n is None:
                conn.execute(RESULTS_DDL)
                conn.execute(LOG_DDL.format(id_type="INTEGER"))
                return
            for table in ("labels", "model_calls"):
                rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                assert rows == n, (table, rows)
    finally:
        conn.close()


def llm_work(item_id: int, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prompt, fake model call, fence stripping, validation: (result row, log row)."""
    prompt = f"Label item {item_id}: {text}"
    started = clock()
    raw = label_answer(item_id, text)
    latency_ms = (clock() - started) * 1000
    fenced = FENCE.search(raw)
    label = label_model().model_validate_json(fenced[1] if fenced else raw)
    log = {
        "item_id": item_id,
        "prompt": prompt,
        "raw": raw,
        "latency_ms": latency_ms,
        "input_tokens": len(prompt) // 4 + 1,
        "output_tokens": len(raw) // 4 + 1,
    }
    return label.model_dump(), log


def report(label: str, n: int, secs: float, enqueue_secs: float, note: str = "") -> None:
    """One line the runner parses: `label(backend): R tasks/s (N tasks in S s; ...)`."""
    extra = f", {note}" if note else ""
    print(
        f"{label}: {n / secs:,.0f} tasks/s ({n:,} tasks in {secs:.1f} s; "
        f"enqueue {enqueue_secs:.1f} s of it{extra})",
        flush=True,
    )


clock = time.perf_counter
