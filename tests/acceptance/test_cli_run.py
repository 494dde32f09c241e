"""`turing run` and friends as real subprocesses on SQLite and PostgreSQL: two processes at
once never process a task twice nor write a sink row twice; a raising sink fails only its
task; a source with a SQL error enqueues nothing; a dry run leaves the content identical."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import rows, scratch_database, start_turing
from turing.store.db import connect

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]


FLOWS = """
import os, time
from pydantic import BaseModel
from turing import ScriptStep, Sink, Source, Workflow

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    words: int
    worker: int

def count(data):
    time.sleep(0.02)
    return {"item_id": data["item_id"], "words": len(data["text"].split()), "worker": os.getpid()}

def store(tx, output, task):
    if output["item_id"] == 13:
        raise RuntimeError("results table is read-only for item 13")
    tx.sql("INSERT INTO results (item_id, words, worker) "
           "VALUES (:item_id, :words, :worker)", output)

count_words = Workflow(
    "count_words", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM results r WHERE r.item_id = i.item_id)"),
    sink=Sink(fn=store),
    steps=[ScriptStep("count", run=count)],
)

broken_source = Workflow(
    "broken_source", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM no_such_table"),
    steps=[ScriptStep("count", run=count)],
)
"""

ITEMS = 300


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    items = [
        f"INSERT INTO items (item_id, text) VALUES ({i}, '{'w ' * (i % 7 + 1)}')"
        for i in range(1, ITEMS + 1)
    ]
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE results (item_id INTEGER PRIMARY KEY, words INTEGER NOT NULL,"
        " worker INTEGER NOT NULL)",
    ]
    with scratch_database(request.param, tmp_path, ddl + items) as url:
        yield url


@pytest.fixture
def items_project(tmp_path: Path, database: str) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{database}"\nworkflows = ["flows"]\n'
    )
    return tmp_path


def test_two_processes_never_process_a_task_twice(items_project: Path, database: str) -> None:
    procs = [
        start_turing(
            items_project, "run", "--workflow", "count_words", "--json", "--concurrency", "4"
        )
        for _ in range(2)
    ]
    reports, codes = [], []
    for p in procs:
        out, err = p.communicate(timeout=180)
        codes.append(p.returncode)
        assert out, err
        reports.append(json.loads(out))
    # item 13's sink raises: the process that ran it says so by its exit code
    assert sorted(codes) == [0, 1], codes
    assert [r["failed"] for r in reports] == codes
    processed = [r["processed"] for r in reports]
    assert sum(processed) == ITEMS, processed
    assert min(processed) > 0, f"the processes did not overlap: {processed}"
    runs = rows(database, "SELECT task_id, COUNT(*) AS n FROM turing_runs GROUP BY task_id")
    assert len(runs) == ITEMS and all(r["n"] == 1 for r in runs)
    results = rows(database, "SELECT COUNT(*) AS n, COUNT(DISTINCT worker) AS workers FROM results")
    assert results[0]["n"] == ITEMS - 1  # item 13's sink raises
    tasks = rows(database, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
    assert {r["status"]: r["n"] for r in tasks} == {"succeeded": ITEMS - 1, "failed": 1}


def test_raising_sink_fails_only_its_task(
    items_project: Path, database: str, turing: Runner
) -> None:
    ran = turing("run", "--workflow", "count_words", "--json", cwd=items_project)
    assert ran.code == 1, ran.err  # a task failed: the run says so (issue 11, item 6)
    report = json.loads(ran.out)
    assert report["exit_code"] == 1
    assert report["succeeded"] == ITEMS - 1 and report["failed"] == 1
    assert report["failures_by_reason"] == {"sink": 1}
    failed = rows(database, "SELECT subject, last_error FROM turing_tasks WHERE status = 'failed'")
    assert failed[0]["subject"] == "13" and "read-only for item 13" in failed[0]["last_error"]
    assert rows(database, "SELECT COUNT(*) AS n FROM results WHERE item_id = 13")[0]["n"] == 0
    again = turing("run", "--workflow", "count_words", "--json", cwd=items_project)
    assert json.loads(again.out)["processed"] == 0
    history = turing("history", "--failed", "--json", cwd=items_project)
    runs = json.loads(history.out)
    assert len(runs) == 1 and runs[0]["error_kind"] == "sink"


def test_source_with_sql_error_enqueues_nothing(
    items_project: Path, database: str, turing: Runner
) -> None:
    ran = turing("discover", "--json", cwd=items_project)
    assert ran.code == 1
    found = {d["workflow"]: d for d in json.loads(ran.out)}
    assert "no_such_table" in found["broken_source"]["error"]
    assert found["broken_source"]["enqueued"] == 0
    assert found["count_words"]["enqueued"] == ITEMS
    assert "broken_source" in ran.err and "Traceback" not in ran.err
    queued = rows(
        database, "SELECT COUNT(*) AS n FROM turing_tasks WHERE workflow = 'broken_source'"
    )
    assert queued[0]["n"] == 0


def _dump(url: str) -> dict[str, list[Any]]:
    db = connect(url)
    try:
        with db.read() as tx:
            if db.dialect == "sqlite":
                names = [
                    r["name"] for r in tx.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
            else:
                names = [
                    r["tablename"]
                    for r in tx.sql(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    )
                ]
            return {
                n: sorted(
                    json.dumps(r, sort_keys=True, default=str) for r in tx.sql(f"SELECT * FROM {n}")
                )
                for n in sorted(names)
            }
    finally:
        db.close()


def test_dry_run_changes_nothing(items_project: Path, database: str, turing: Runner) -> None:
    # Some history first, so that "nothing changes" covers the turing tables too.
    turing("run", "--workflow", "count_words", "--max-tasks", "10", cwd=items_project)
    before = _dump(database)
    ran = turing("run", "--workflow", "count_words", "--dry-run", "--json", cwd=items_project)
    assert ran.code == 1, ran.err  # item 13's sink would fail: the dry run says so
    report = json.loads(ran.out)
    assert report["dry_run"] is True
    assert report["processed"] == ITEMS - 10 and report["failures_by_reason"] == {"sink": 1}
    assert _dump(database) == before
    human = turing(
        "run", "--workflow", "count_words", "--dry-run", "--max-tasks", "3", cwd=items_project
    )
    assert "DRY RUN" in human.out and "nothing was written" in human.out
    assert _dump(database) == before
