"""Scenario d: three `turing run` processes on one SQLite file (each discovers, claims and
processes); once work is flowing, the one holding the most tasks is SIGKILLed. The other
two must finish and exit 0; the killed run's tasks must be claimable again within one lease
(`turing run --lease`), so a final `turing run` after that lease finishes everything."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from chaos.conftest import MakeProject
from chaos.harness import (
    LEASE,
    ChaosProject,
    Fleet,
    Ledger,
    owner_pid,
    run_has_lease,
)

pytestmark = pytest.mark.chaos

ITEMS = 400
NEEDS_LEASE = "needs turing run --lease (issue 10)"


def test_three_runs_on_one_sqlite_file_one_killed(
    make_project: MakeProject, fleets: Callable[[ChaosProject], Fleet]
) -> None:
    has_lease = run_has_lease()
    project = make_project("sqlite", ITEMS, CHAOS_SINK_SLEEP="0.005")
    fleet = fleets(project)
    ledger = Ledger(project, fleet)
    lease = ["--lease", f"{LEASE:g}"] if has_lease else []
    runs = [fleet.spawn("run", "--json", "-c", "4", *lease) for _ in range(3)]

    def holders() -> Counter[int]:
        rows = project.rows("SELECT lease_owner FROM turing_tasks WHERE status = 'running'")
        return Counter(owner_pid(r["lease_owner"]) or 0 for r in rows)

    fleet.first_completions(40)
    start = time.time()
    held = holders()
    victim = max(runs, key=lambda m: held.get(m.pid, 0))
    fleet.kill(victim)
    for m in runs:
        if m is not victim:
            fleet.wait(m, timeout=180)
    end = time.time()
    ledger.check_fleet(expect_exit=True)
    snap = ledger.snapshot()
    stranded = holders().get(victim.pid, 0)
    ledger.notes.append(
        f"killed `turing run` pid {victim.pid} holding {held.get(victim.pid, 0)} task(s); "
        f"{stranded} still held by it when the other two had exited"
    )
    time.sleep(max(0.0, (victim.killed_at or 0) + LEASE + 0.5 - time.time()))
    ledger.final_run()
    ledger.check_outcomes()
    ledger.check_sink_log()
    ledger.check_no_running()
    ledger.check_stall(start, end, snap)
    if not has_lease and ledger.stranded:
        others = [p for p in ledger.problems if p not in ledger.stranded]
        ledger.problems = others
        ledger.verify()  # everything that does not depend on `turing run --lease` holds
        pytest.xfail(f"{NEEDS_LEASE}: " + "; ".join(ledger.stranded))
    ledger.verify()
