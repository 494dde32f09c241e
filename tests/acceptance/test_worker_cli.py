"""`turing worker`, `turing stats` and `turing prune` as real subprocesses on SQLite and
PostgreSQL: SIGTERM finishes or releases in-flight tasks and exits 0 with none left
running; a second signal exits at once; a SIGKILLed worker's tasks are reclaimed by another
worker once the lease expires; a frozen worker's late result is discarded, never written
twice; schedules from turing.toml fire."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import rows, scratch_database
from turing.store.db import connect

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]


FLOWS = """
import os, time
from pathlib import Path
from pydantic import BaseModel
from turing import ScriptStep, Sink, Source, Workflow

BLOCK = os.environ.get("BLOCK_FILE")

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    words: int
    worker: int

def count(data):
    # runs while BLOCK_FILE exists (at most 2 minutes), then answers
    deadline = time.time() + 120
    while BLOCK and Path(BLOCK).exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(float(os.environ.get("TASK_SECONDS", "0")))
    return {"item_id": data["item_id"], "words": len(data["text"].split()), "worker": os.getpid()}

count_words = Workflow(
    "count_words", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM results r WHERE r.item_id = i.item_id) ORDER BY item_id"),
    # no primary key on results: a result written twice would show as two rows
    sink=Sink.sql("INSERT INTO results (item_id, words, worker) "
                  "VALUES (:item_id, :words, :worker)"),
    steps=[ScriptStep("count", run=count, timeout=300)],
)
"""

ITEMS = 12


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    items = [
        f"INSERT INTO items (item_id, text) VALUES ({i}, '{'w ' * i}')" for i in range(1, ITEMS + 1)
    ]
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE results (item_id INTEGER, words INTEGER, worker INTEGER)",
    ]
    with scratch_database(request.param, tmp_path, ddl + items) as url:
        yield url


@pytest.fixture
def project(tmp_path: Path, database: str) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{database}"\nworkflows = ["flows"]\n'
    )
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
    return {**env, "COLUMNS": "200", **extra}


def _worker(project: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "turing", "worker", "--json", *args],
        cwd=project,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _turing(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turing", *args],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _counts(url: str) -> dict[str, int]:
    found = rows(url, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
    return {r["status"]: int(r["n"]) for r in found}


def _wait(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def _running_by(url: str, pid: int) -> int:
    found = rows(
        url,
        "SELECT COUNT(*) AS n FROM turing_tasks WHERE status = 'running' "
        f"AND lease_owner LIKE '%:{pid}:%'",
    )
    return int(found[0]["n"])


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _summary(out: str) -> dict[str, Any]:
    return dict(json.loads(out))


def test_sigterm_lets_in_flight_tasks_finish_and_exits_0(project: Path, database: str) -> None:
    assert _turing(project, "discover").returncode == 0
    block = project / "block"
    block.touch()
    proc = _worker(project, "-c", "3", "--grace", "20", "--idle", "0.05", BLOCK_FILE=str(block))
    try:
        _wait(lambda: _running_by(database, proc.pid) == 3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # stopping: nothing new is claimed while the three run on
        assert _counts(database) == {"running": 3, "pending": ITEMS - 3}
        block.unlink()
        code, out, err = _finish(proc)
    finally:
        proc.kill()
    assert code == 0, err
    summary = _summary(out)
    assert (summary["succeeded"], summary["released"], summary["forced"]) == (3, 0, False)
    assert summary["stop_reason"] == "SIGTERM received"
    assert _counts(database) == {"succeeded": 3, "pending": ITEMS - 3}
    assert "stopping (SIGTERM received)" in err and "Traceback" not in err


def test_sigterm_releases_tasks_that_outlive_the_grace_period(project: Path, database: str) -> None:
    assert _turing(project, "discover").returncode == 0
    block = project / "block"
    block.touch()
    proc = _worker(project, "-c", "4", "--grace", "1", BLOCK_FILE=str(block))
    try:
        _wait(lambda: _running_by(database, proc.pid) == 4)
        proc.send_signal(signal.SIGTERM)
        code, out, err = _finish(proc)  # the tasks block for 2 minutes: the grace ends them
    finally:
        proc.kill()
        block.unlink()
    assert code == 0, err
    summary = _summary(out)
    assert (summary["released"], summary["forced"], summary["processed"]) == (4, True, 0)
    assert _counts(database) == {"pending": ITEMS}  # none left running
    attempts = rows(database, "SELECT DISTINCT attempts FROM turing_tasks")
    assert attempts == [{"attempts": 0}]  # a released task did not use up an attempt
    assert "released 4 unfinished task(s)" in err
    # and the next worker processes everything
    again = _worker(project, "--idle", "0.05")
    try:
        _wait(lambda: _counts(database) == {"succeeded": ITEMS})
        again.send_signal(signal.SIGINT)
        code, out, err = _finish(again)
    finally:
        again.kill()
    assert code == 0, err
    assert _summary(out)["succeeded"] == ITEMS


def test_a_second_signal_exits_at_once(project: Path, database: str) -> None:
    assert _turing(project, "discover").returncode == 0
    block = project / "block"
    block.touch()
    proc = _worker(project, "-c", "2", "--grace", "60", "--lease", "2", BLOCK_FILE=str(block))
    try:
        _wait(lambda: _running_by(database, proc.pid) == 2)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        code, _, err = _finish(proc, timeout=10)
    finally:
        proc.kill()
        block.unlink()
    assert code == 128 + signal.SIGTERM, err
    assert "exiting now" in err
    # its tasks stay leased until the lease runs out; then any worker reclaims them
    assert _counts(database)["running"] == 2


def test_a_killed_workers_tasks_are_reclaimed_after_the_lease(project: Path, database: str) -> None:
    assert _turing(project, "discover").returncode == 0
    block = project / "block"
    block.touch()
    doomed = _worker(project, "-c", "3", "--lease", "1", BLOCK_FILE=str(block))
    try:
        _wait(lambda: _running_by(database, doomed.pid) == 3)
    finally:
        doomed.kill()  # SIGKILL: no release, no goodbye
        doomed.communicate()
    block.unlink()
    assert _counts(database)["running"] == 3
    rescuer = _worker(project, "-c", "3", "--lease", "1", "--idle", "0.05")
    try:
        _wait(lambda: _counts(database) == {"succeeded": ITEMS})  # once the 1 s lease expired
        rescuer.send_signal(signal.SIGTERM)
        code, out, err = _finish(rescuer)
    finally:
        rescuer.kill()
    assert code == 0, err
    assert _summary(out)["succeeded"] == ITEMS
    per_item = rows(database, "SELECT item_id, COUNT(*) AS n FROM results GROUP BY item_id")
    assert len(per_item) == ITEMS and all(r["n"] == 1 for r in per_item)
    assert {r["worker"] for r in rows(database, "SELECT DISTINCT worker FROM results")} == {
        rescuer.pid
    }
    reclaimed = rows(database, "SELECT attempts, last_error FROM turing_tasks WHERE attempts = 2")
    assert len(reclaimed) == 3
    runs = rows(database, "SELECT task_id, status FROM turing_runs")
    assert len(runs) == ITEMS and {r["status"] for r in runs} == {"succeeded"}


def test_a_frozen_workers_late_result_is_discarded_not_written_twice(
    project: Path, database: str
) -> None:
    """SIGSTOP freezes worker A (heartbeats too) mid-task; B reclaims and finishes the task
    after the lease; on SIGCONT A finishes as well, and its result is recorded as discarded."""
    db = connect(database)
    with db.tx() as tx:
        tx.sql("DELETE FROM items WHERE item_id > 1")
    db.close()
    assert _turing(project, "discover").returncode == 0
    block = project / "block"
    block.touch()
    a = _worker(project, "--lease", "1", "--idle", "0.05", BLOCK_FILE=str(block))
    b: subprocess.Popen[str] | None = None
    try:
        _wait(lambda: _running_by(database, a.pid) == 1)
        a.send_signal(signal.SIGSTOP)
        block.unlink()
        b = _worker(project, "--lease", "1", "--idle", "0.05")
        _wait(lambda: _counts(database) == {"succeeded": 1})
        a.send_signal(signal.SIGCONT)
        _wait(lambda: len(rows(database, "SELECT id FROM turing_runs")) == 2)
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        (code_a, out_a, err_a), (code_b, _, err_b) = _finish(a), _finish(b)
    finally:
        a.send_signal(signal.SIGCONT)
        a.kill()
        if b is not None:
            b.kill()
    assert (code_a, code_b) == (0, 0), (err_a, err_b)
    assert rows(database, "SELECT item_id, worker FROM results") == [
        {"item_id": 1, "worker": b.pid}
    ]
    runs = rows(database, "SELECT worker, status, error_kind FROM turing_runs ORDER BY id")
    assert [(r["status"], r["error_kind"]) for r in runs] == [
        ("succeeded", None),
        ("discarded", "lease_lost"),
    ]
    assert f":{b.pid}:" in runs[0]["worker"] and f":{a.pid}:" in runs[1]["worker"]
    assert _summary(out_a)["per_workflow"]["count_words"]["lost"] == 1
    assert "lease was lost" in err_a
    assert _counts(database) == {"succeeded": 1}


def test_stats_and_prune_commands(project: Path, database: str) -> None:
    ran = _turing(project, "run", "--json")
    assert ran.returncode == 0, ran.stderr
    stats = _turing(project, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    numbers = json.loads(stats.stdout)
    assert numbers["tasks"] == ITEMS and numbers["by_status"] == {"succeeded": ITEMS}
    assert numbers["per_workflow"]["count_words"]["duration"]["n"] == ITEMS
    human = _turing(project, "stats", "--since", "1h", "--workflow", "count_words")
    assert human.returncode == 0, human.stderr
    assert "runs per workflow" in human.stdout and "tasks/min" in human.stdout
    timeouts = _turing(project, "stats", "--timeouts", "--json")
    assert json.loads(timeouts.stdout)["timeouts"] == []  # script steps only: no LLM step
    bad = _turing(project, "stats", "--since", "yesterday")
    assert bad.returncode == 2 and "neither a duration" in bad.stderr

    dry = _turing(project, "prune", "--older-than", "0s", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    counted = json.loads(dry.stdout)
    assert (counted["runs"], counted["tasks"], counted["tasks_kept"]) == (ITEMS, 0, ITEMS)
    assert len(rows(database, "SELECT id FROM turing_runs")) == ITEMS
    done = _turing(project, "prune", "--older-than", "0s", "--tasks")
    assert done.returncode == 0, done.stderr
    assert "deleted history before" in done.stdout and f"{ITEMS} run(s)" in done.stdout
    assert rows(database, "SELECT id FROM turing_runs") == []
    assert rows(database, "SELECT id FROM turing_tasks") == []
    assert len(rows(database, "SELECT item_id FROM results")) == ITEMS  # domain data untouched
    missing = _turing(project, "prune")
    assert missing.returncode == 2 and "--older-than" in missing.stderr


def test_schedules_from_the_project_file_fire(project: Path, database: str) -> None:
    with (project / "turing.toml").open("a") as toml:
        toml.write(
            '\n[schedules.every_second]\ncron = "* * * * * *"\nworkflows = ["count_words"]\n'
            "max_tasks = 5\n"
        )
    assert _turing(project, "db", "upgrade").returncode == 0
    proc = _worker(project, "--idle", "0.05")
    try:
        _wait(lambda: _counts(database).get("succeeded", 0) >= 10)
        proc.send_signal(signal.SIGTERM)
        code, out, err = _finish(proc)
    finally:
        proc.kill()
    assert code == 0, err
    assert "every_second: * * * * * * (UTC): discover count_words, at most 5 new" in err
    summary = _summary(out)
    assert summary["ticks_fired"] >= 2
    assert all(t["tasks"] <= 5 for t in summary["ticks"])
    assert "tick every_second" in err and "enqueued 5" in err
    bad = project / "turing.toml"
    bad.write_text(bad.read_text().replace('cron = "* * * * * *"', 'cron = "every second"'))
    broken = _turing(project, "worker")
    assert broken.returncode != 0
    assert "schedules.every_second.cron" in broken.stderr and "not a cron" in broken.stderr
