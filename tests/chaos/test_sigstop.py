"""Scenario b: one of three `turing worker` processes freezes (SIGSTOP, as in a GC or VM
pause) inside the transaction that completes its tasks, for four leases, then resumes
(SIGCONT). Meanwhile the other two must keep claiming and finishing work; once resumed, its
late results must be discarded, never written twice.

The freeze is triggered from inside the callable sink (the worker stops itself right after
logging a call, holding the row locks of the tasks it is completing), so every run freezes
at the same, worst, place. PostgreSQL only: on SQLite a writer frozen inside its transaction
holds the database's one write lock, and every other writer must wait for it by design."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chaos.conftest import MakeProject
from chaos.harness import LEASE, STALL_MARGIN, ChaosProject, Fleet, Ledger, owner_pid

pytestmark = pytest.mark.chaos

ITEMS = 800
FREEZE_S = 4 * LEASE


def test_a_worker_frozen_longer_than_its_lease(
    make_project: MakeProject, fleets: Callable[[ChaosProject], Fleet]
) -> None:
    project = make_project("postgres", ITEMS, CHAOS_SINK_SLEEP="0.005")
    flag = project.folder / "freeze-now"
    found = project.turing("discover")
    assert found.code == 0, found.err
    fleet = fleets(project)
    ledger = Ledger(project, fleet)
    frozen = fleet.worker(env={"CHAOS_FREEZE_FLAG": str(flag)})
    for _ in range(2):
        fleet.worker()
    fleet.first_completions(20)
    start = time.time()
    flag.touch()
    fleet.frozen_itself(frozen)
    held = [
        r
        for r in project.rows("SELECT lease_owner FROM turing_tasks WHERE status = 'running'")
        if owner_pid(r["lease_owner"]) == frozen.pid
    ]
    before = project.finished()
    time.sleep(FREEZE_S)
    during = project.finished() - before
    fleet.thaw(frozen)
    time.sleep(LEASE + 2)  # its late results come in now
    end = time.time()
    snap = ledger.snapshot()
    fleet.stop()
    ledger.check_fleet()
    ledger.final_run()
    discarded = project.rows(
        "SELECT COUNT(*) AS n FROM turing_runs WHERE status = 'discarded' AND worker LIKE :w",
        {"w": f"%:{frozen.pid}:%"},
    )[0]["n"]
    ledger.notes.append(
        f"frozen pid {frozen.pid} for {FREEZE_S:g}s holding {len(held)} running task(s); "
        f"{during} task(s) finished by the others meanwhile; {discarded} late result(s) of the "
        f"frozen worker discarded; queue at the end of the window {snap.counts}"
    )
    ledger.check_outcomes()
    ledger.check_sink_log()
    ledger.check_no_running()
    ledger.check_stall(start, end, snap)
    if during == 0:
        ledger.problem(
            f"no task finished in the {FREEZE_S:g}s the worker was frozen (lease {LEASE:g}s, "
            f"margin {STALL_MARGIN:g}s)"
        )
    ledger.verify()
