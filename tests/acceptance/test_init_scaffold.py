"""`turing init` scaffolds a project whose `turing run` processes something at once: a
SQLite database with sample rows, a workflow with a source and a SQL sink, an offline actor."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Runner = Callable[..., Any]

pytestmark = pytest.mark.acceptance


def test_init_then_run_processes_the_sample_rows_once(turing: Runner, tmp_path: Path) -> None:
    ran = turing("init", "proj")
    assert ran.code == 0, ran.err
    proj = tmp_path / "proj"
    assert {p.name for p in proj.iterdir()} >= {
        "turing.toml", "workflows.py", "schema.sql", "README.md", "turing.db",
    }  # fmt: skip

    first = turing("run", "--json", cwd=proj)
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert report["processed"] == 8 and report["succeeded"] == 8 and report["failed"] == 0

    with sqlite3.connect(proj / "turing.db") as conn:
        rows = dict(conn.execute("SELECT ticket_id, category FROM ticket_triage").fetchall())
    assert len(rows) == 8
    assert rows[1] == "billing" and rows[2] == "bug" and rows[3] == "account"

    second = turing("run", cwd=proj)
    assert second.code == 0, second.err
    assert "nothing pending" in second.out
    again = turing("run", "--json", cwd=proj)
    assert again.code == 0 and json.loads(again.out)["processed"] == 0

    history = turing("history", "--json", cwd=proj)
    assert history.code == 0, history.err
    runs = json.loads(history.out)
    assert len(runs) == 8
    assert {r["workflow"] for r in runs} == {"triage_ticket"}
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sorted(int(r["subject"]) for r in runs) == list(range(1, 9))


def test_new_rows_are_picked_up_and_init_force_keeps_the_data(
    turing: Runner, tmp_path: Path
) -> None:
    assert turing("init", "proj").code == 0
    proj = tmp_path / "proj"
    assert turing("run", cwd=proj).code == 0
    with sqlite3.connect(proj / "turing.db") as conn:
        conn.execute("INSERT INTO tickets VALUES (9, 'Please refund the duplicate charge')")

    forced = turing("init", "proj", "--force")
    assert forced.code == 0, forced.err
    ran = turing("run", "--json", cwd=proj)
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["processed"] == 1  # only the new ticket; nothing redone
    with sqlite3.connect(proj / "turing.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM ticket_triage").fetchone()
    assert count == 9
