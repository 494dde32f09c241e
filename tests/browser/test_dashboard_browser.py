"""The dashboard in a real browser: the real `turing dashboard` on a project whose tasks
the real `turing run` processed. Load the overview, filter the failures, open a run, retry
the failed tasks in bulk and see them succeed, approve a held output and see its sink row.

With `TURING_DASHBOARD_SCREENSHOTS=<folder>` it also saves the screenshots the docs show.
"""

from __future__ import annotations

import os
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import Dashboard, run_turing

pytestmark = pytest.mark.browser

FLOWS = """
from pathlib import Path
from pydantic import BaseModel
from turing import ScriptStep, Sink, Source, Workflow
from turing.review import flagged

class In(BaseModel):
    item_id: int
    text: str

class Words(BaseModel):
    item_id: int
    words: int

class Checked(BaseModel):
    item_id: int
    verdict: str
    needs_human: bool

def count(data):
    if "broken" in data["text"] and not Path("fixed.flag").exists():
        raise RuntimeError(f"cannot count item {data['item_id']}: the text is broken")
    return {"item_id": data["item_id"], "words": len(data["text"].split())}

def check(data):
    unsure = data["item_id"] % 4 == 0
    return {"item_id": data["item_id"], "verdict": "unsure" if unsure else "fine",
            "needs_human": unsure}

count_words = Workflow(
    "count_words", input=In, output=Words, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM results r WHERE r.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO results (item_id, words) VALUES (:item_id, :words)"),
    steps=[ScriptStep("count", run=count)],
)

check_items = Workflow(
    "check_items", input=In, output=Checked, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM verdicts v WHERE v.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO verdicts (item_id, verdict) VALUES (:item_id, :verdict)"),
    review=[flagged("needs_human")],
    steps=[ScriptStep("check", run=check)],
)
"""

ITEMS = 12
BROKEN = {3, 7}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        conn.execute("CREATE TABLE results (item_id INTEGER PRIMARY KEY, words INTEGER)")
        conn.execute("CREATE TABLE verdicts (item_id INTEGER PRIMARY KEY, verdict TEXT)")
        for i in range(1, ITEMS + 1):
            text = "this text is broken" if i in BROKEN else " ".join(["word"] * i)
            conn.execute("INSERT INTO items VALUES (?, ?)", (i, text))
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "sqlite:///{db}"\nworkflows = ["flows"]\n'
    )
    ran = run_turing(tmp_path, "run")
    assert "count_words" in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    return tmp_path


@pytest.fixture
def dashboard(folder: Path) -> Iterator[Dashboard]:
    server = Dashboard(folder, "--as", "browser-tester")
    try:
        yield server
    finally:
        server.stop()


def _shot(page: Any, name: str) -> None:
    target = os.environ.get("TURING_DASHBOARD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"dashboard-{name}.png"), full_page=False)


def _sql(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(folder / "app.db") as conn:
        return list(conn.execute(sql))


def test_overview_failures_run_bulk_retry_and_review(
    page: Any, dashboard: Dashboard, folder: Path
) -> None:
    # the overview: both workflows, their failures and the held outputs
    page.goto(dashboard.url + "/")
    assert page.title().startswith("Overview")
    queue = page.locator("table.grid").first
    assert "count_words" in queue.inner_text() and "check_items" in queue.inner_text()
    _shot(page, "overview")

    # failures, grouped by reason: follow the group to its tasks
    page.click("text=Failures")
    assert "script_crash" in page.content()
    _shot(page, "failures")
    page.click("table.grid tbody a >> nth=0")
    page.wait_for_url(re.compile(r"/tasks\?.*reason=script_crash"))
    failed_ids = page.locator("table.tasks tbody td.num a").all_inner_texts()
    assert len(failed_ids) == len(BROKEN)
    _shot(page, "tasks")

    # a run's story: open a failed task, then its run
    page.click(f"text={failed_ids[0]}")
    page.click("table.grid tbody td.num a >> nth=0")
    assert "cannot count item" in page.content()
    _shot(page, "run")

    # bulk retry by filter, after fixing the cause; then the real `turing run`
    page.go_back()
    page.go_back()
    (folder / "fixed.flag").write_text("fixed")
    page.select_option("select[name=verb]", "retry")
    page.check("input[name=scope][value=filter]")
    page.click("button.primary")
    assert f"{len(BROKEN)} task(s) done" in page.content()
    ran = run_turing(folder, "run", "--workflow", "count_words")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    page.goto(dashboard.url + "/tasks?workflow=count_words&status=failed")
    assert page.locator("table.tasks tbody td.num a").count() == 0
    page.goto(dashboard.url + "/tasks?workflow=count_words&status=succeeded")
    assert page.locator("table.tasks tbody td.num a").count() == ITEMS
    assert _sql(folder, "SELECT COUNT(*) FROM results") == [(ITEMS,)]

    # the review queue: approve one held output, its sink row appears
    page.click("text=Review")
    held = page.locator("table.grid tbody td.num a").all_inner_texts()
    assert len(held) == ITEMS // 4
    page.click(f"text={held[0]}")
    _shot(page, "review")
    subject = _sql(folder, f"SELECT subject FROM turing_tasks WHERE id = {int(held[0])}")[0][0]
    assert _sql(folder, f"SELECT COUNT(*) FROM verdicts WHERE item_id = {subject}") == [(0,)]
    page.click("button[value=approve]")
    page.wait_for_url(re.compile(r"/reviews\?decided="))
    assert _sql(folder, f"SELECT verdict FROM verdicts WHERE item_id = {subject}") == [("unsure",)]
    who = _sql(folder, f"SELECT who, action FROM turing_audit WHERE task_id = {int(held[0])}")
    assert who == [("browser-tester", "review.approve")]

    page.goto(dashboard.url + "/charts")
    _shot(page, "charts")


def test_read_only_dashboard_shows_no_control(page: Any, folder: Path) -> None:
    server = Dashboard(folder, "--read-only")
    try:
        page.goto(server.url + "/tasks?status=failed")
        assert page.locator("form#bulk").count() == 0
        page.goto(server.url + "/")
        assert page.locator("button", has_text="Pause").count() == 0
    finally:
        server.stop()
