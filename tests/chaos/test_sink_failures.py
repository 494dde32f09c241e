"""Scenario e: three `turing worker` processes while the sink refuses 1% of the subjects
(every hundredth, raising inside the completing transaction). Exactly those tasks fail,
with the sink's reason and no result row; every other subject gets one result row, and the
callable sink is called once per subject, whatever else shares a group commit with a
failing one."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chaos.conftest import MakeProject
from chaos.harness import ChaosProject, Fleet, Ledger, wait_for

pytestmark = pytest.mark.chaos

ITEMS = 300
FAIL_EVERY = 100  # the flows fail subjects with id % 100 == 33


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_a_sink_failing_for_one_percent(
    backend: str, make_project: MakeProject, fleets: Callable[[ChaosProject], Fleet]
) -> None:
    project = make_project(backend, ITEMS, CHAOS_SINK_FAIL_EVERY=str(FAIL_EVERY))
    refused = {str(i) for i in range(1, ITEMS + 1) if i % FAIL_EVERY == FAIL_EVERY // 3}
    found = project.turing("discover")
    assert found.code == 0, found.err
    fleet = fleets(project)
    ledger = Ledger(project, fleet)
    for _ in range(3):
        fleet.worker()
    fleet.first_completions(5)
    start = time.time()
    wait_for(lambda: project.finished() >= ITEMS, 120, "every task to finish", every=0.5)
    end = time.time()
    snap = ledger.snapshot()
    fleet.stop()
    ledger.check_fleet()
    ledger.final_run()
    ledger.check_outcomes()
    reasons = ledger.failed_reasons()
    if set(reasons) != refused:
        ledger.problem(
            f"failed subjects {sorted(reasons, key=int)} differ from the ones the sink "
            f"refuses {sorted(refused, key=int)}"
        )
    unexplained = {s: r for s, r in reasons.items() if f"refuses subject {s}" not in r}
    if unexplained:
        ledger.problem(f"failed without the sink's reason: {unexplained}")
    ledger.check_sink_log()
    ledger.check_no_running()
    ledger.check_stall(start, end, snap)
    ledger.verify()
