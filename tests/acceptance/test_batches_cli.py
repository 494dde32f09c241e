"""Provider batches through the real CLI: a `turing worker` SIGKILLed after it submitted a
batch (its tasks held 'submitted', nothing written), then the next worker ingests it and
every subject gets one result; `turing batches list|show|poll|cancel` and their errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import Runner, rows, scratch_database
from turing.sim import SimConfig, Simulator

ITEMS = 8
TURNAROUND = 1000.0  # simulator clock seconds: the batch ends when the test says so

FLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Sink, Source, Workflow

class ItemIn(BaseModel):
    item_id: int
    text: str

class Summary(BaseModel):
    item_id: int
    summary: str

summarize = Workflow(
    "summarize",
    input=ItemIn,
    output=Summary,
    subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM summaries s WHERE s.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
    steps=[LLMStep("summarize", prompt="Summarize.\\nitem_id: {{ item_id }}\\ntext: {{ text }}",
                   actor="model")],
)
"""


class Summaries:
    def respond(self, model: str, messages: list[dict[str, Any]], schema: Any, rng: Any) -> Any:
        text = "\n".join(str(m.get("content")) for m in messages)
        item = int(re.search(r"item_id: (\d+)", text).group(1))  # type: ignore[union-attr]
        return {"item_id": item, "summary": f"summary of {item}"}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    config = SimConfig.profile("fast", batch_turnaround_s=TURNAROUND)
    with Simulator(config, responder=Summaries(), clock=clock) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE summaries (item_id INTEGER PRIMARY KEY, summary TEXT NOT NULL)",
    ] + [f"INSERT INTO items (item_id, text) VALUES ({i}, 'text {i}')" for i in range(1, ITEMS + 1)]
    with scratch_database(request.param, tmp_path, ddl) as url:
        yield url


@pytest.fixture
def project(tmp_path: Path, database: str, sim: Simulator) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        textwrap.dedent(f"""\
        [project]
        database = "{database}"
        workflows = ["flows"]

        [actors.model]
        spec = "openai:gpt-4o-mini"
        base_url = "{sim.openai_url}"
        price_input = 1.0
        price_output = 1.0
        batch = "on"
        batch_poll = 0.2
        """)
    )
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TURING_")} | {"COLUMNS": "200"}


def _worker(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "turing", "worker", "--idle", "0.1", "--grace", "5"],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(check: Callable[[], Any], proc: subprocess.Popen[str], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def _statuses(url: str) -> dict[str, int]:
    found = rows(url, "SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
    return {r["status"]: int(r["n"]) for r in found}


def test_a_worker_killed_between_submission_and_ingestion(
    project: Path, database: str, clock: Clock, turing: Runner
) -> None:
    assert turing("discover", cwd=project).code == 0
    first = _worker(project)
    try:
        _wait(
            lambda: rows(database, "SELECT id FROM turing_batches WHERE status = 'submitted'"),
            first,
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert _statuses(database) == {"submitted": ITEMS}  # held: nobody claims or reclaims them
    assert rows(database, "SELECT COUNT(*) AS n FROM summaries") == [{"n": 0}]

    clock.now += TURNAROUND  # the provider finishes the batch while no worker runs
    second = _worker(project)
    try:
        _wait(lambda: _statuses(database) == {"succeeded": ITEMS}, second)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    written = rows(database, "SELECT item_id, summary FROM summaries ORDER BY item_id")
    assert written == [{"item_id": i, "summary": f"summary of {i}"} for i in range(1, ITEMS + 1)]
    [batch] = rows(database, "SELECT status, requests FROM turing_batches")
    assert batch == {"status": "ingested", "requests": ITEMS}
    calls = rows(database, "SELECT COUNT(*) AS n, COUNT(batch_id) AS b FROM turing_calls")
    assert calls == [{"n": ITEMS, "b": ITEMS}]

    listed = turing("batches", "list", "--json", cwd=project)
    assert listed.code == 0, listed.err
    [row] = json.loads(listed.out)
    assert (row["status"], row["items"]) == ("ingested", {"done": ITEMS})
    shown = turing("batches", "show", str(row["id"]), cwd=project)
    assert shown.code == 0 and "t1-a1-r1" in shown.out
    stats = turing("stats", "--json", cwd=project)
    assert stats.code == 0, stats.err
    numbers = json.loads(stats.out)
    [batched] = numbers["batch_calls"]  # reported apart, at the batch rate
    assert (batched["calls"], batched["batches"]) == (ITEMS, 1)
    tokens = batched["input_tokens"] + batched["output_tokens"]
    assert batched["cost"] == pytest.approx(tokens * 1.0 / 1_000_000 * 0.5)
    assert numbers["actors"] == []  # a batch answer has no latency of its own


def test_batches_commands_say_what_is_wrong(
    project: Path, database: str, clock: Clock, turing: Runner
) -> None:
    missing = turing("batches", "show", "999", cwd=project)
    assert missing.code == 2 and "no batch 999" in missing.err
    assert turing("batches", "cancel", "999", cwd=project).code != 0
    assert turing("run", cwd=project).code == 0  # discovers and submits one batch
    [batch] = rows(database, "SELECT id, status FROM turing_batches")
    assert batch["status"] == "submitted"
    polled = turing("batches", "poll", cwd=project)
    assert polled.code == 0 and "1 batch(es) polled" in polled.out  # still in progress
    clock.now += TURNAROUND / 2  # half of the requests are answered
    cancelled = turing("batches", "cancel", str(batch["id"]), cwd=project)
    assert cancelled.code == 0, cancelled.err
    assert f"{ITEMS // 2} task(s) succeeded" in cancelled.out
    assert _statuses(database) == {"succeeded": ITEMS // 2, "pending": ITEMS // 2}
    again = turing("batches", "cancel", str(batch["id"]), cwd=project)
    assert again.code != 0 and "cancelled" in again.err
