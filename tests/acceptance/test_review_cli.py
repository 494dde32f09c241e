"""The review gate and the operations verbs through the real CLI, on SQLite and PostgreSQL:
`turing run` holds low-confidence outputs, `turing review approve` writes them (an invalid
edit is refused with the field named), `reject`, `cancel`, `pause`/`resume` and `audit` do
what they say, and every verb exits non-zero when it did nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import rows, scratch_database

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

FLOWS = """
from pydantic import BaseModel
from turing import ScriptStep, Sink, Source, Workflow
from turing.review import below

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    label: str
    confidence: float

def label(data):
    sure = 0.9 if data["item_id"] % 3 else 0.1
    return {"item_id": data["item_id"], "label": data["text"].upper(), "confidence": sure}

label_items = Workflow(
    "label_items", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM labels l WHERE l.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO labels (item_id, label) VALUES (:item_id, :label)"),
    steps=[ScriptStep("label", run=label)],
    review=below("confidence", 0.5),
)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)",
        *[f"INSERT INTO items (item_id, text) VALUES ({i}, 'item {i}')" for i in range(1, 10)],
    ]
    with scratch_database(request.param, tmp_path, ddl) as url:
        (tmp_path / "flows.py").write_text(FLOWS)
        (tmp_path / "turing.toml").write_text(
            f'[project]\ndatabase = "{url}"\nworkflows = ["flows"]\n'
        )
        yield tmp_path, url


def labelled(url: str) -> list[int]:
    return [r["item_id"] for r in rows(url, "SELECT item_id FROM labels ORDER BY item_id")]


def held_ids(turing: Runner, folder: Path) -> dict[int, int]:
    """subject -> task id of the held tasks, as `turing review list --json` shows them."""
    ran = turing("review", "list", "--json", cwd=folder)
    assert ran.code == 0, ran.err
    return {int(i["subject"]): i["task_id"] for i in json.loads(ran.out)}


def test_run_holds_and_review_decides(project: tuple[Path, str], turing: Runner) -> None:
    folder, url = project
    ran = turing("run", cwd=folder)
    assert ran.code == 0, ran.err  # held is not failed
    assert "3 held for review" in ran.out
    assert labelled(url) == [1, 2, 4, 5, 7, 8]
    held = held_ids(turing, folder)
    assert sorted(held) == [3, 6, 9]

    shown = turing("review", "show", str(held[3]), "--json", cwd=folder)
    assert json.loads(shown.out)["output"]["label"] == "ITEM 3"

    ok = turing("review", "approve", str(held[3]), "--as", "alice", cwd=folder)
    assert ok.code == 0 and "1 task(s) approved" in ok.out, ok.err
    assert 3 in labelled(url)
    again = turing("review", "approve", str(held[3]), cwd=folder)
    assert again.code == 1 and "not held for review" in again.err

    bad = turing(
        "review", "approve", str(held[6]), "--edit", '{"item_id": 6, "label": 7}', cwd=folder
    )
    assert bad.code == 1 and "breaks the contract" in bad.err and "label" in bad.err
    edit = '{"item_id": 6, "label": "SIX", "confidence": 1}'
    good = turing("review", "approve", str(held[6]), "--edit", edit, "--as", "bob", cwd=folder)
    assert good.code == 0, good.err
    assert rows(url, "SELECT label FROM labels WHERE item_id = 6") == [{"label": "SIX"}]

    no = turing("review", "reject", str(held[9]), "--reason", "not an item", cwd=folder)
    assert no.code == 0, no.err
    [task] = rows(url, f"SELECT status, last_error FROM turing_tasks WHERE id = {held[9]}")
    assert task["status"] == "failed" and "not an item" in task["last_error"]

    audit = turing("audit", "--json", cwd=folder)
    actions = [(a["who"], a["action"]) for a in json.loads(audit.out)]
    assert ("alice", "review.approve") in actions and ("bob", "review.approve") in actions
    assert [a for _, a in actions].count("review.reject") == 1


def test_pause_cancel_and_resume(project: tuple[Path, str], turing: Runner) -> None:
    folder, url = project
    assert turing("discover", cwd=folder).code == 0
    paused = turing("pause", "label_items", "--reason", "prompt under revision", cwd=folder)
    assert paused.code == 0 and "label_items paused" in paused.out
    idle = turing("run", "--no-discover", cwd=folder)
    assert "paused: label_items" in idle.out, idle.out
    assert labelled(url) == []
    [first] = rows(url, "SELECT MIN(id) AS id FROM turing_tasks")
    gone = turing("cancel", str(first["id"]), "99999", "--reason", "duplicate", cwd=folder)
    assert gone.code == 0 and "1 task(s) cancelled" in gone.out
    assert "task 99999 left alone: no such task" in gone.err
    assert turing("resume", "label_items", cwd=folder).code == 0
    ran = turing("run", "--no-discover", "--json", cwd=folder)
    assert json.loads(ran.out)["processed"] == 8
    assert 1 not in labelled(url)
    nothing = turing("cancel", "99999", cwd=folder)
    assert nothing.code == 1


@pytest.mark.parametrize(
    "command",
    [("review", "list"), ("review", "show"), ("review", "approve"), ("review", "reject"),
     ("cancel",), ("requeue",), ("pause",), ("resume",), ("audit",)],
    ids=" ".join,
)  # fmt: skip
def test_each_verb_has_help_with_an_example(turing: Runner, command: tuple[str, ...]) -> None:
    ran = turing(*command, "--help")
    assert ran.code == 0 and "Example" in ran.out, ran.err


def test_bulk_by_filter(project: tuple[Path, str], turing: Runner) -> None:
    folder, url = project
    assert turing("discover", cwd=folder).code == 0
    neither = turing("cancel", cwd=folder)
    assert neither.code == 2 and "give task ids, or a filter" in neither.err
    bad = turing("cancel", "--workflow", "label_items", "--status", "nonsense", cwd=folder)
    assert bad.code == 2 and "unknown status" in bad.err
    gone = turing("cancel", "--workflow", "label_items", "--subject", "1", cwd=folder)
    assert gone.code == 0 and "1 task(s) cancelled" in gone.out, gone.err
    assert turing("run", cwd=folder).code == 0
    cancelled = rows(url, "SELECT subject FROM turing_tasks WHERE status = 'failed'")
    assert cancelled == [{"subject": "1"}]
    many = ("requeue", "--workflow", "label_items", "--status", "succeeded", "--input", "{}")
    with_input = turing(*many, cwd=folder)
    assert with_input.code == 2 and "one task at a time" in with_input.err
    invalid = turing("requeue", "--workflow", "label_items", "--input", "{}", cwd=folder)
    assert invalid.code == 1 and '"item_id" is a required property' in invalid.err
    again = turing("requeue", "--workflow", "label_items", "--as", "ops", cwd=folder)
    assert again.code == 0 and "1 task(s) requeued" in again.out, again.err
    assert turing("run", cwd=folder).code == 0
    assert 1 in labelled(url)
