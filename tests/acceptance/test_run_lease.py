"""A SIGKILLed `turing run` (issue 10, fault 5): it held its tasks under a fixed 600 s lease,
and the next `turing run` said "nothing pending: every discovered subject is done", which
was false. Now `turing run --lease` holds short leases that heartbeats renew, the killed
run's tasks are claimable again once one lease runs out, and a run that finds nothing to
claim says what the queue holds. Real CLI subprocesses, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import rows, scratch_database, start_turing

pytestmark = pytest.mark.acceptance

FLOWS = """
import os, time
from pathlib import Path
from pydantic import BaseModel
from turing import ScriptStep, Sink, Source, Workflow

class In(BaseModel):
    item_id: int

class Out(BaseModel):
    item_id: int

def wait_for_go(data):
    deadline = time.monotonic() + 60
    while not Path("go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"item_id": data["item_id"]}

slow = Workflow(
    "slow", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM results r WHERE r.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO results (item_id) VALUES (:item_id)"),
    steps=[ScriptStep("wait", run=wait_for_go)],
)
"""

ITEMS = 6
LEASE_S = 6.0  # long enough for the next runs to start within it


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY)",
        "CREATE TABLE results (item_id INTEGER NOT NULL)",  # no unique key: doubles show
        *(f"INSERT INTO items (item_id) VALUES ({i})" for i in range(1, ITEMS + 1)),
    ]
    with scratch_database(request.param, tmp_path, ddl) as url:
        yield url


def _wait_until(check: Any, what: str, bound_s: float = 60) -> None:
    deadline = time.monotonic() + bound_s
    while not _holds(check):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def _holds(check: Any) -> bool:
    try:
        return bool(check())
    except Exception as exc:  # the run has not created Turing's tables yet
        if "turing_tasks" in str(exc):
            return False
        raise


def test_a_killed_turing_run_gives_its_tasks_back_within_one_lease(
    tmp_path: Path, database: str
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{database}"\nworkflows = ["flows"]\n'
    )
    lease = str(LEASE_S)
    doomed = start_turing(tmp_path, "run", "--lease", lease, "--concurrency", str(ITEMS), "--json")
    try:
        leases = (
            "SELECT MIN(lease_expires_at) AS t, COUNT(*) AS n FROM turing_tasks "
            "WHERE status = 'running'"
        )
        _wait_until(lambda: rows(database, leases)[0]["n"] == ITEMS, "every task running")
        first_lease = rows(database, leases)[0]["t"]
        _wait_until(lambda: rows(database, leases)[0]["t"] > first_lease, "a heartbeat")
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    killed_at = time.time()
    held = rows(database, "SELECT lease_expires_at FROM turing_tasks WHERE status = 'running'")
    assert len(held) == ITEMS
    # the leases it left run out within one lease of its death (not 600 s)
    assert all(r["lease_expires_at"] <= killed_at + LEASE_S + 0.5 for r in held)

    # a run right away finds nothing to claim and says why (not "every subject is done")
    (tmp_path / "go").write_text("")
    now = start_turing(tmp_path, "run", "--lease", lease, "--json")
    out, err = now.communicate(timeout=120)
    assert now.returncode == 0, err
    first = json.loads(out)
    if first["processed"]:
        pytest.skip("the killed run's leases ran out before the next run began (slow machine)")
    assert f"{ITEMS} running under a live lease" in first["idle"], first
    expired = "SELECT MAX(lease_expires_at) AS t FROM turing_tasks WHERE status = 'running'"
    _wait_until(
        lambda: (rows(database, expired)[0]["t"] or 0) < time.time(), "the dead run's leases end"
    )
    last = start_turing(tmp_path, "run", "--lease", lease, "--json")
    out, err = last.communicate(timeout=120)
    assert last.returncode == 0, err
    assert json.loads(out)["processed"] == ITEMS
    # every subject exactly once, nothing left running
    results = rows(database, "SELECT item_id, COUNT(*) AS n FROM results GROUP BY item_id")
    assert sorted((r["item_id"], r["n"]) for r in results) == [(i, 1) for i in range(1, 7)]
    states = rows(database, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
    assert {r["status"]: r["n"] for r in states} == {"succeeded": ITEMS}

    idle = start_turing(tmp_path, "run", "--json")
    out, _ = idle.communicate(timeout=120)
    assert json.loads(out)["idle"] == f"nothing pending: all {ITEMS} task(s) succeeded."
