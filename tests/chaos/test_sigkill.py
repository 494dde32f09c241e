"""Scenario a: three `turing worker` processes on one database; every few seconds a random
one is SIGKILLed (no release, no goodbye) and a fresh one takes its place. Then the
survivors stop, a final `turing run` finishes what is left, and the ledger must balance."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chaos.conftest import MakeProject
from chaos.harness import LEASE, ChaosProject, Fleet, Ledger

pytestmark = pytest.mark.chaos

ITEMS = 500
WORKERS = 3
CHAOS_S = 12.0


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_sigkill_random_workers(
    backend: str, make_project: MakeProject, fleets: Callable[[ChaosProject], Fleet]
) -> None:
    project = make_project(backend, ITEMS, CHAOS_SINK_SLEEP="0.005")
    found = project.turing("discover")
    assert found.code == 0, found.err
    fleet = fleets(project)
    ledger = Ledger(project, fleet)
    for _ in range(WORKERS):
        fleet.worker()
    fleet.first_completions(5)
    start = time.time()
    kills = 0
    while time.time() - start < CHAOS_S:
        time.sleep(fleet.rng.uniform(2.0, 3.5))
        fleet.kill_random()
        kills += 1
        fleet.worker()
        if not project.counts().get("pending"):
            break
    end = time.time()
    ledger.check_fleet()
    snap = ledger.snapshot()
    fleet.stop()
    ledger.check_fleet()
    # the last victim's tasks become claimable once its lease is over
    time.sleep(max(0.0, max(m.killed_at or 0 for m in fleet.members) + LEASE + 0.5 - time.time()))
    ledger.final_run()
    ledger.notes.append(f"{kills} worker(s) SIGKILLed in {end - start:.1f}s; {snap.counts}")
    ledger.check_outcomes()
    ledger.check_sink_log()
    ledger.check_no_running()
    ledger.check_stall(start, end, snap)
    ledger.verify()
