"""Scenario c: three `turing worker` processes on the private PostgreSQL instance, which is
restarted twice mid-run (`pg_ctl restart -m fast`, then a stop, two seconds down, a start).
The sink is slowed down a little so that completing transactions are in flight when the
server goes. Workers must ride it out, and a database fault must never dead-letter a valid
result nor be recorded as a model error."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from chaos.conftest import MakeProject
from chaos.harness import ChaosProject, Fleet, Ledger, PrivatePostgres

pytestmark = pytest.mark.chaos

ITEMS = 450
# What a database fault looks like in a task's last error or a run's error.
DB_FAULT = re.compile(
    r"completing the task failed|AdminShutdown|terminating connection|server closed the "
    r"connection|connection refused|OperationalError|consuming input failed|connection is "
    r"(closed|lost|bad)|PoolTimeout|couldn't get a connection|the database system is",
    re.IGNORECASE,
)


def test_postgres_restarts_mid_run(
    make_project: MakeProject,
    fleets: Callable[[ChaosProject], Fleet],
    private_pg: PrivatePostgres,
) -> None:
    project = make_project("postgres", ITEMS, CHAOS_SINK_SLEEP="0.03")
    found = project.turing("discover")
    assert found.code == 0, found.err
    fleet = fleets(project)
    ledger = Ledger(project, fleet)
    for _ in range(3):
        fleet.worker()
    fleet.first_completions(20)
    start = time.time()
    time.sleep(3)
    with fleet.outage():
        private_pg.restart("fast")
    time.sleep(5)
    with fleet.outage():
        private_pg.stop("fast")
        time.sleep(2)
        private_pg.start()
    time.sleep(6)
    end = time.time()
    snap = ledger.snapshot()
    ledger.check_fleet()  # before stop: a worker that died of the restart shows here
    fleet.stop()
    ledger.check_fleet()
    ledger.final_run()
    ledger.check_outcomes()
    dead_lettered = {s: r for s, r in ledger.failed_reasons().items() if DB_FAULT.search(r)}
    if dead_lettered:
        sample = [f"{s}: {r[:120]}" for s, r in sorted(dead_lettered.items())[:3]]
        ledger.problem(
            f"{len(dead_lettered)} task(s) dead-lettered by a database fault (their results "
            f"thrown away): {sample}"
        )
    as_model = project.rows(
        "SELECT subject, error_kind, error FROM turing_runs WHERE status = 'failed' "
        "AND error_kind = 'actor'"
    )
    as_model = [r for r in as_model if DB_FAULT.search(str(r["error"] or ""))]
    if as_model:
        sample = [f"{r['subject']}: {str(r['error'])[:120]}" for r in as_model[:3]]
        ledger.problem(
            f"{len(as_model)} run(s) record a database fault as a model error "
            f"(error_kind 'actor'): {sample}"
        )
    ledger.notes.append(
        f"two restarts, outages {[round(b - a, 1) for a, b in fleet.outages]}s; "
        f"queue at the end of the window {snap.counts}"
    )
    ledger.check_sink_log()
    ledger.check_no_running()
    ledger.check_stall(start, end, snap)
    ledger.verify()
