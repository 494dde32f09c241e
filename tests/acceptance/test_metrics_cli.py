"""`turing worker --metrics-port` as a real subprocess: /metrics is scraped over HTTP while
the worker processes a fake model's work, parsed with prometheus_client's parser, and holds
the queue, task, call, token and repair metrics with their counts; a bad or busy port is a
clear error before any work starts."""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acceptance.conftest import Runner, rows, scratch_database, start_turing

pytestmark = pytest.mark.acceptance

FLOWS = """
import json
from pydantic import BaseModel
from turing import FakeModel, LLMStep, Sink, Source, Workflow

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    tags: list[str]

def tag(request):
    item = request.variables["item_id"]
    return "```json\\n" + json.dumps({"item_id": item, "tags": ["t"]}) + "\\n```"  # repaired

ACTORS = {"fake:tagger": FakeModel(tag, name="tagger")}

tag_items = Workflow(
    "tag_items", input=In, output=Out, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                      "(SELECT 1 FROM tags t WHERE t.item_id = i.item_id) ORDER BY item_id"),
    sink=Sink.sql("INSERT INTO tags (item_id, n) VALUES (:item_id, 1)"),
    steps=[LLMStep("tag", "Tag: {{ text }}", actor="tagger")],
)
"""
ITEMS = 6


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    ddl = [
        "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "CREATE TABLE tags (item_id INTEGER, n INTEGER)",
        *(f"INSERT INTO items (item_id, text) VALUES ({i}, 'item {i}')" for i in range(1, 7)),
    ]
    with scratch_database("sqlite", tmp_path, ddl) as url:
        (tmp_path / "flows.py").write_text(FLOWS)
        (tmp_path / "turing.toml").write_text(
            f'[project]\ndatabase = "{url}"\nworkflows = ["flows"]\n\n'
            '[actors]\ntagger = "fake:tagger"\n'
        )
        yield tmp_path, url


def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples
                      if s.name == family.name or s.name.endswith(("_total", "_count"))}
        for family in text_string_to_metric_families(text)
    }  # fmt: skip


def test_worker_serves_metrics_that_prometheus_can_parse(
    project: tuple[Path, str], turing: Runner
) -> None:
    folder, db = project
    assert turing("discover", cwd=folder).code == 0
    worker = start_turing(folder, "worker", "--metrics-port", "0", "--idle", "0.2")
    try:
        assert worker.stderr is not None
        url = None
        for line in worker.stderr:  # the startup banner names the endpoint (port 0: any)
            found = re.search(r"metrics\s+(http://127\.0\.0\.1:\d+/metrics)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "no metrics line in the startup banner"
        deadline = time.monotonic() + 60
        while True:
            metrics = _scrape(url)
            done = metrics.get("turing_tasks_finished", {}).get(
                (("outcome", "succeeded"), ("workflow", "tag_items")), 0
            )
            if done == ITEMS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert done == ITEMS
        wf, actor = (("workflow", "tag_items"),), (("actor", "fake:tagger"),)
        succeeded = (("status", "succeeded"), *wf)
        while metrics["turing_queue_tasks"].get(succeeded) != ITEMS:  # counts cached 2 s
            assert time.monotonic() < deadline
            time.sleep(0.2)
            metrics = _scrape(url)
        assert (("status", "pending"), *wf) not in metrics["turing_queue_tasks"]
        assert metrics["turing_review_backlog"][wf] == 0
        assert metrics["turing_model_calls"][(*actor, ("outcome", "ok"))] == ITEMS
        assert metrics["turing_model_input_tokens"][actor] > 0
        assert metrics["turing_model_output_tokens"][actor] > 0
        assert metrics["turing_repairs"][(("kind", "strip_fences"), *wf)] == ITEMS
        assert metrics["turing_task_duration_seconds"][wf] == ITEMS  # its _count
        assert metrics["turing_model_call_duration_seconds"][actor] == ITEMS
        for name in (
            "turing_leases_reclaimed", "turing_reasks", "turing_model_retries",
            "turing_circuit_breaker_state", "turing_model_cost",
        ):  # fmt: skip
            assert name in metrics
        assert all(name.startswith("turing_") for name in metrics)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert len(rows(db, "SELECT item_id FROM tags")) == ITEMS


def test_a_bad_or_busy_metrics_port_is_a_clear_error(
    project: tuple[Path, str], turing: Runner
) -> None:
    folder, _ = project
    bad = turing("worker", "--metrics-port", "70000", cwd=folder)
    assert bad.code == 2
    assert "--metrics-port 70000" in bad.err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = turing("worker", "--metrics-port", str(port), cwd=folder)
    assert taken.code == 2
    assert f"--metrics-port {port}" in taken.err and "cannot listen" in taken.err
    assert "Traceback" not in taken.err
    # nothing was claimed: the worker stopped before processing
    assert not rows(project[1], "SELECT id FROM turing_tasks WHERE status = 'running'")
