"""Values the databases hand back differently (NUMERIC, DATE, JSON text) reach the
workflow as the same JSON values on both backends, in real and in dry runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import orchestrator, rows
from turing import ScriptStep, Sink, Source, Workflow
from turing.store import Store


class TypedIn(BaseModel):
    item_id: int
    half: float
    total: int
    day: str
    tags: list[str]


class TypedOut(BaseModel):
    item_id: int
    echo: str


SOURCE = {
    "sqlite": (
        "SELECT item_id, item_id * 0.5 AS half, SUM(item_id) OVER () AS total, "
        "'2024-01-02' AS day, json_array('a', 'b') AS tags FROM items "
        "WHERE item_id <= 3 AND item_id NOT IN (SELECT item_id FROM results) ORDER BY item_id"
    ),
    "postgres": (
        "SELECT item_id, item_id * 0.5 AS half, SUM(item_id) OVER () AS total, "
        "DATE '2024-01-02' AS day, json_build_array('a', 'b') AS tags FROM items "
        "WHERE item_id <= 3 AND item_id NOT IN (SELECT item_id FROM results) ORDER BY item_id"
    ),
}


def typed(seen: list[dict[str, Any]]) -> Workflow:
    def echo(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        return {"item_id": data["item_id"], "echo": json.dumps(data, sort_keys=True)}

    return Workflow(
        "typed",
        input=TypedIn,
        output=TypedOut,
        subject_key="item_id",
        source=Source(sql=SOURCE),
        sink=Sink.sql("INSERT INTO results (item_id, words) VALUES (:item_id, 0)"),
        steps=[ScriptStep("echo", run=echo)],
    )


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry"])
def test_database_types_arrive_as_json_values(domain: Store, dry_run: bool) -> None:
    seen: list[dict[str, Any]] = []
    report = orchestrator(domain, typed(seen)).process_pending_tasks(dry_run=dry_run)
    assert report.failures == {}
    assert report.succeeded == 3
    first = min(seen, key=lambda d: d["item_id"])
    assert first == {"item_id": 1, "half": 0.5, "total": 6, "day": "2024-01-02", "tags": ["a", "b"]}
    if not dry_run:
        [task] = rows(domain, "SELECT input FROM turing_tasks WHERE subject = '1'")
        assert json.loads(task["input"]) == first
