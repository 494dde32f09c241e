"""Issue 11, item 7, through the real CLI on SQLite and PostgreSQL: `turing run` against an
Ollama host that is down (a closed port on 127.0.0.1) with 40 tasks. It stops after a few
connection failures instead of trying every task (104 attempts before), leaves every task
pending with its attempt not counted, says so in the report and in `--json`, and exits 3;
the next run, with the host back (the simulator on that port), does the work and exits 0."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import rows, scratch_database
from integration.test_breaker import Tags, closed_port

try:
    from turing.sim import SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

FLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Sink, Source, Workflow

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    tags: list[str]

tag_items = Workflow(
    "tag_items", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM tags t WHERE t.item_id = i.item_id)"),
    sink=Sink.sql("INSERT INTO tags (item_id, tag) VALUES (:item_id, :value)", for_each="tags"),
    steps=[LLMStep("tag", prompt="Tag item {{ item_id }}: {{ text }}", actor="tagger")],
)
"""

ITEMS = 40
CONCURRENCY = 4
THRESHOLD = 3  # [providers.ollama] circuit_failures


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)",
    ] + [f"INSERT INTO items (item_id, text) VALUES ({i}, 'item {i}')" for i in range(1, 41)]
    with scratch_database(request.param, tmp_path, ddl) as url:
        yield url


def test_run_against_a_host_that_is_down_stops_fast_and_exits_3(
    tmp_path: Path, database: str, turing: Runner
) -> None:
    port = closed_port()
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{database}"\nworkflows = ["flows"]\n\n'
        '[actors]\ntagger = "ollama:qwen2.5:7b"\n\n'
        f'[providers.ollama]\nbase_url = "http://127.0.0.1:{port}"\n'
        f"circuit_failures = {THRESHOLD}\ncircuit_cooldown_s = 30\n"
    )
    ran = turing("run", "--json", "--concurrency", str(CONCURRENCY), cwd=tmp_path)
    assert ran.code == 3, (ran.out, ran.err)
    report = json.loads(ran.out)
    assert report["exit_code"] == 3
    assert report["failed"] == 0 and report["succeeded"] == 0
    assert report["deferred"] == report["processed"] >= 1
    assert set(report["failures_by_reason"]) == {"circuit_open (deferred)"}
    stopped = report["stopped"]
    assert f"circuit open for 127.0.0.1:{port}" in stopped
    assert f"{ITEMS} task(s) left pending (attempts not counted)" in stopped
    # the wait left of the 30 s cooldown, read when the report was written (29 or 30)
    probe = re.search(r"probing again after (\d+)s", stopped)
    assert probe is not None and 0 < int(probe.group(1)) <= 30, stopped
    failures = int(re.search(r"(\d+) consecutive connection failures", stopped).group(1))  # type: ignore[union-attr]
    assert THRESHOLD <= failures <= THRESHOLD + CONCURRENCY - 1  # not one per task
    tasks = rows(database, "SELECT status, attempts FROM turing_tasks")
    assert len(tasks) == ITEMS
    assert {(t["status"], t["attempts"]) for t in tasks} == {("pending", 0)}

    text = turing("run", "--concurrency", str(CONCURRENCY), cwd=tmp_path)
    assert text.code == 3
    assert "circuit open for" in text.out + text.err

    with Simulator(SimConfig.profile("fast"), responder=Tags(), port=port):
        back = turing("run", "--json", cwd=tmp_path)
    assert back.code == 0, (back.out, back.err)
    done = json.loads(back.out)
    assert done["succeeded"] == ITEMS and done["stopped"] is None
    assert rows(database, "SELECT COUNT(*) AS n FROM tags")[0]["n"] == ITEMS
