"""What `turing run`, `history`, `runs show` and `chain` say, as real subprocesses on SQLite
and PostgreSQL: an input_invalid reason names the field, each error text says its kind once,
the progress bar counts outcomes as the report does, `history` fits 80 columns, `--debug`
works after the subcommand, and `chain` says what it does not do."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import scratch_database

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

FLOWS = """
from pydantic import BaseModel, Field
from turing import ScriptStep, Sink, Source, Workflow
from turing.retry import RetryPolicy

class In(BaseModel):
    item_id: int
    text: str = Field(min_length=1)

class Out(BaseModel):
    item_id: int
    words: int

def count(data):
    if data["item_id"] == 7:
        raise RuntimeError("the counter is down for item 7")
    return {"item_id": data["item_id"], "words": len(data["text"].split())}

def store(tx, output, task):
    if output["item_id"] == 13:
        raise RuntimeError("results table is read-only for item 13")
    tx.sql("INSERT INTO results (item_id, words) VALUES (:item_id, :words)", output)

count_words_with_a_rather_long_name = Workflow(
    "count_words_with_a_rather_long_name", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM results r WHERE r.item_id = i.item_id)"),
    sink=Sink(fn=store),
    retry=RetryPolicy(max_attempts=3, backoff_s=600, retry_on=frozenset({"script_crash"})),
    steps=[ScriptStep("count", run=count)],
)

class Words(BaseModel):
    item_id: int
    words: int

class Doubled(BaseModel):
    item_id: int
    doubled: int

double = Workflow(
    "double", input=Words, output=Doubled,
    steps=[ScriptStep("double", run=lambda d: {"item_id": d["item_id"],
                                               "doubled": 2 * d["words"]})],
)
"""
NAME = "count_words_with_a_rather_long_name"
ITEMS = 20  # item 5 has an empty text (input_invalid), 7 crashes (retry), 13's sink raises


@pytest.fixture(params=["sqlite", "postgres"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    rows = [
        f"INSERT INTO items (item_id, text) VALUES ({i}, '{'' if i == 5 else 'a b c'}')"
        for i in range(1, ITEMS + 1)
    ]
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE results (item_id INTEGER PRIMARY KEY, words INTEGER NOT NULL)",
    ]
    with scratch_database(request.param, tmp_path, ddl + rows) as url:
        (tmp_path / "flows.py").write_text(FLOWS)
        (tmp_path / "turing.toml").write_text(
            f'[project]\ndatabase = "{url}"\nworkflows = ["flows"]\n'
        )
        yield tmp_path


def _failed(turing: Runner, folder: Path) -> dict[str, dict[str, Any]]:
    ran = turing("history", "--failed", "--json", cwd=folder)
    assert ran.code == 0, ran.err
    return {r["error_kind"]: r for r in json.loads(ran.out)}


def test_reasons_name_the_field_and_say_their_kind_once(turing: Runner, folder: Path) -> None:
    ran = turing("run", cwd=folder)
    assert "$.text" in ran.err, ran.err  # the run's failures, first of each kind
    failed = _failed(turing, folder)
    assert set(failed) == {"input_invalid", "sink", "script_crash"}, failed
    for kind, row in failed.items():
        assert not row["error"].startswith(kind), row["error"]  # the kind is its own column
        assert "sink failed" not in row["error"]
    assert "$.text" in failed["input_invalid"]["error"]

    shown = turing("history", "--failed", cwd=folder)
    assert "$.text" in shown.out, shown.out
    for kind in failed:
        assert shown.out.count(f"{kind}: {kind}") == 0

    run = turing("runs", "show", str(failed["input_invalid"]["id"]), cwd=folder)
    assert "$.text" in run.out, run.out
    assert "input_invalid: input_invalid" not in run.out
    assert "(input_invalid): input_invalid" not in run.out
    sink = turing("runs", "show", str(failed["sink"]["id"]), cwd=folder)
    assert "error (sink): RuntimeError: results table is read-only" in sink.out, sink.out


def test_progress_counts_outcomes_as_the_report_does(turing: Runner, folder: Path) -> None:
    ran = turing("run", cwd=folder)
    assert "17 ok, 2 failed, 1 to retry" in ran.out, ran.out
    bar = [line for line in ran.err.splitlines() if "processing" in line][-1]
    assert re.search(r"ok 17 failed 2 to retry 1\b", bar), bar


def test_history_fits_80_columns(turing: Runner, folder: Path) -> None:
    turing("run", cwd=folder)
    ran = turing("history", cwd=folder, env={"COLUMNS": "80"})
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert len(lines) >= ITEMS, ran.out
    assert max(len(line) for line in lines) <= 80, ran.out
    assert all(len(line.rstrip()) <= 80 for line in lines)
    body = [line for line in lines if re.match(r"[│ ]+\d+ ", line)]
    assert len(body) == ITEMS, ran.out  # one line per run: nothing wraps
    failed = [line for line in body if "failed" in line or "input_inv" in line]
    assert failed, ran.out


def test_debug_after_the_subcommand(turing: Runner, folder: Path) -> None:
    before = turing("--debug", "exec", "nope", "--input", "{}", cwd=folder)
    after = turing("exec", "nope", "--input", "{}", "--debug", cwd=folder)
    assert after.code == before.code != 0, after.err
    assert "Traceback" in after.err, after.err
    assert "No such option" not in after.err


def test_chain_says_what_it_does_not_do(turing: Runner, folder: Path) -> None:
    helped = turing("chain", "--help", cwd=folder, env={"COLUMNS": "200"})
    text = " ".join(helped.out.split())
    for words in ("no sink", "source filter", "no subject"):
        assert words in text, helped.out
    ran = turing("chain", NAME, "double", "--input", '{"item_id": 1, "text": "a b"}', cwd=folder)
    assert ran.code == 0, ran.err
    assert "writes no sink" in ran.err and "no subject" in ran.err, ran.err
    as_json = turing(
        "chain", NAME, "double", "--input", '{"item_id": 1, "text": "a b"}', "--json",
        cwd=folder,
    )  # fmt: skip
    report = json.loads(as_json.out)
    assert "no sink" in report["note"] and report["output"] == {"item_id": 1, "doubled": 4}
