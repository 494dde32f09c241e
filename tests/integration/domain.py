"""The small domain and the workflows the integration tests run on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from turing import (
    Executor,
    FakeModel,
    LLMStep,
    ModelRequest,
    Orchestrator,
    Registry,
    ScriptStep,
    Sink,
    Source,
    Workflow,
)
from turing.store import Store
from turing.store.db import Row

DOMAIN_TABLES = (
    "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
    "CREATE TABLE results (item_id INTEGER PRIMARY KEY, words INTEGER NOT NULL)",
    "CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (item_id, tag))",
    "CREATE TABLE summaries (item_id INTEGER PRIMARY KEY, summary TEXT NOT NULL)",
)


def text_of(i: int) -> str:
    return " ".join(f"w{j}" for j in range(i))  # item i has i words


def add_items(store: Store, ids: range | list[int], text: Callable[[int], str] = text_of) -> None:
    with store.db.tx() as tx:
        for i in ids:
            tx.sql("INSERT INTO items (item_id, text) VALUES (:i, :t)", {"i": i, "t": text(i)})


def rows(store: Store, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
    with store.db.read() as tx:
        return tx.sql(sql, params)


def scalar(store: Store, sql: str) -> Any:
    [row] = rows(store, sql)
    return next(iter(row.values()))


# -------------------------------------------------------------------------- workflows
class ItemIn(BaseModel):
    item_id: int
    text: str


class WordsOut(BaseModel):
    item_id: int
    words: int


class TagsOut(BaseModel):
    item_id: int
    tags: list[str]


class ResultIn(BaseModel):
    item_id: int
    words: int


class SummaryOut(BaseModel):
    item_id: int
    summary: str


PENDING_ITEMS = (
    "SELECT item_id, text FROM items i "
    "WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.item_id = i.item_id) ORDER BY item_id"
)
ALL_ITEMS = "SELECT item_id, text FROM items ORDER BY item_id"
INSERT_RESULT = "INSERT INTO results (item_id, words) VALUES (:item_id, :words)"
UPSERT_RESULT = INSERT_RESULT + " ON CONFLICT (item_id) DO UPDATE SET words = excluded.words"


@dataclass
class Calls:
    """What the scripts and the fake model were asked, for 'nothing ran' assertions."""

    script: list[dict[str, Any]] = field(default_factory=list)
    fail_ids: set[int] = field(default_factory=set)


def count_words(
    calls: Calls,
    *,
    version: int = 1,
    source: Source | None = None,
    sink: Sink | None = None,
    name: str = "count_words",
    run: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Workflow:
    def count(data: dict[str, Any]) -> dict[str, Any]:
        calls.script.append(data)
        if data["item_id"] in calls.fail_ids:
            raise RuntimeError(f"cannot count item {data['item_id']}")
        return {"item_id": data["item_id"], "words": len(data["text"].split())}

    return Workflow(
        name,
        version=version,
        input=ItemIn,
        output=WordsOut,
        subject_key="item_id",
        source=source or Source(sql=PENDING_ITEMS),
        sink=sink or Sink.sql(INSERT_RESULT),
        steps=[ScriptStep("count", run=run or count)],
    )


def summarize(calls: Calls) -> Workflow:
    def run(data: dict[str, Any]) -> dict[str, Any]:
        calls.script.append(data)
        return {"item_id": data["item_id"], "summary": f"{data['words']} words"}

    return Workflow(
        "summarize",
        input=ResultIn,
        output=SummaryOut,
        subject_key="item_id",
        source=Source(
            sql="SELECT item_id, words FROM results r WHERE NOT EXISTS "
            "(SELECT 1 FROM summaries s WHERE s.item_id = r.item_id) ORDER BY item_id"
        ),
        sink=Sink.sql("INSERT INTO summaries (item_id, summary) VALUES (:item_id, :summary)"),
        steps=[ScriptStep("summarize", run=run)],
    )


def tag_answer(request: ModelRequest) -> str:
    """Even ids: fenced JSON object; odd ids: a bare array (wrapped by repair)."""
    item_id = int(request.variables["item_id"])
    tags = [f"len{len(str(request.variables['text']).split())}", "item"]
    if item_id % 2 == 0:
        return f'Here you go:\n```json\n{{"item_id": {item_id}, "tags": {tags!r}}}\n```'.replace(
            "'", '"'
        )
    return str(tags).replace("'", '"')


def tag_items(limits: dict[str, Any] | None = None, sink: Sink | None = None) -> Workflow:
    return Workflow(
        "tag_items",
        limits=limits,
        input=ItemIn,
        output=TagsOut,
        subject_key="item_id",
        source=Source(
            sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
            "(SELECT 1 FROM tags t WHERE t.item_id = i.item_id) ORDER BY item_id"
        ),
        sink=sink
        or Sink.sql(
            "DELETE FROM tags WHERE item_id = :item_id",
            "INSERT INTO tags (item_id, tag) VALUES (:item_id, :value)",
            for_each="tags",
        ),
        steps=[LLMStep("tag", prompt="Tag item {{ item_id }}: {{ text }}", actor="m")],
    )


def orchestrator(
    store: Store | None, *workflows: Workflow, model: FakeModel | None = None, **kw: Any
) -> Orchestrator:
    executor = Executor({"m": model or FakeModel(tag_answer)})
    kw.setdefault("concurrency", 4)
    return Orchestrator(Registry(workflows), executor, store, **kw)
