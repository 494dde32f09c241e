"""Shared bits of the peer benchmarks: arguments, the report line and the PostgreSQL DSN.

Runs in the peers venv (`.venv-peers`), so it imports nothing from Turing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
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


def report(label: str, n: int, secs: float, enqueue_secs: float, note: str = "") -> None:
    """One line the runner parses: `label(backend): R tasks/s (N tasks in S s; ...)`."""
    extra = f", {note}" if note else ""
    print(
        f"{label}: {n / secs:,.0f} tasks/s ({n:,} tasks in {secs:.1f} s; "
        f"enqueue {enqueue_secs:.1f} s of it{extra})",
        flush=True,
    )


clock = time.perf_counter
