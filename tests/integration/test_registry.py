"""Registry sync and drift between code and database. Both backends."""

from __future__ import annotations

import json

from pydantic import BaseModel

from integration.domain import (
    Calls,
    ItemIn,
    WordsOut,
    count_words,
    orchestrator,
    summarize,
    tag_items,
)
from turing import ScriptStep, Workflow
from turing.store import Store


class WordsOutV2(BaseModel):
    item_id: int
    words: int
    chars: int = 0


def _with_output(output: type[BaseModel], *, version: int = 1) -> Workflow:
    return Workflow(
        "count_words",
        version=version,
        input=ItemIn,
        output=output,
        subject_key="item_id",
        steps=[ScriptStep("count", run=_count)],
    )


def _count(data: dict[str, object]) -> dict[str, object]:
    return {"item_id": data["item_id"], "words": len(str(data["text"]).split())}


def _contracts(store: Store) -> list[tuple[str, str, int]]:
    return [(r["workflow"], r["role"], r["revision"]) for r in store.contracts()]


def test_sync_creates_then_is_unchanged(store: Store, calls: Calls) -> None:
    orch = orchestrator(store, count_words(calls), tag_items())
    first = {c.workflow: c for c in orch.sync_contracts()}
    assert {k: c.action for k, c in first.items()} == {
        "count_words": "created",
        "tag_items": "created",
    }
    assert first["count_words"].contracts == ("input", "output")
    assert first["count_words"].version == 1
    second = orch.sync_contracts()
    assert [(c.action, c.contracts) for c in second] == [("unchanged", ())] * 2
    assert _contracts(store) == [
        ("count_words", "input", 1),
        ("count_words", "output", 1),
        ("tag_items", "input", 1),
        ("tag_items", "output", 1),
    ]
    registry = {r["name"]: r for r in store.registry()}
    assert set(registry) == {"count_words", "tag_items"}
    definition = json.loads(registry["tag_items"]["definition"])
    assert definition["name"] == "tag_items"
    assert registry["tag_items"]["fingerprint"] == orch.executor.fingerprint(
        orch.registry.get("tag_items")
    )


def test_changed_output_contract_gets_a_new_revision_for_that_role_only(store: Store) -> None:
    orchestrator(store, _with_output(WordsOut)).sync_contracts()
    [change] = orchestrator(store, _with_output(WordsOutV2)).sync_contracts()
    assert (change.action, change.contracts) == ("updated", ("output",))
    assert _contracts(store) == [
        ("count_words", "input", 1),
        ("count_words", "output", 1),
        ("count_words", "output", 2),
    ]
    [again] = orchestrator(store, _with_output(WordsOutV2)).sync_contracts()
    assert again.action == "unchanged"


def test_reverting_a_contract_syncs(store: Store) -> None:
    orchestrator(store, _with_output(WordsOut)).sync_contracts()
    orchestrator(store, _with_output(WordsOutV2)).sync_contracts()
    [back] = orchestrator(store, _with_output(WordsOut)).sync_contracts()
    assert back.action == "updated"
    assert back.contracts == ("output",)
    outputs = {r["revision"]: r["hash"] for r in store.contracts() if r["role"] == "output"}
    assert max(outputs) == 3
    assert outputs[3] == _with_output(WordsOut).output.hash  # the latest is the old content
    assert [r["revision"] for r in store.contracts() if r["role"] == "input"] == [1]
    [still] = orchestrator(store, _with_output(WordsOut)).sync_contracts()
    assert still.action == "unchanged"


def test_new_version_without_contract_change_updates_the_workflow_only(store: Store) -> None:
    orchestrator(store, _with_output(WordsOut)).sync_contracts()
    [change] = orchestrator(store, _with_output(WordsOut, version=2)).sync_contracts()
    assert (change.action, change.contracts, change.version) == ("updated", (), 2)
    [row] = store.registry()
    assert row["version"] == 2


def test_diff_is_empty_after_sync_and_reports_drift(store: Store, calls: Calls) -> None:
    orch = orchestrator(store, _with_output(WordsOut), tag_items())
    assert sorted(orch.diff_contracts(), key=str) == [
        {"workflow": "count_words", "change": "not in database"},
        {"workflow": "tag_items", "change": "not in database"},
    ]
    orch.sync_contracts()
    assert orch.diff_contracts() == []

    # code changed the output contract of one workflow and no longer has the other
    drifted = orchestrator(store, _with_output(WordsOutV2), summarize(Calls()))
    drift = {d["workflow"]: d for d in drifted.diff_contracts()}
    assert drift["count_words"]["change"] == "differs"
    assert "output_hash" in drift["count_words"]["fields"]
    assert "input_hash" not in drift["count_words"]["fields"]
    assert drift["tag_items"] == {"workflow": "tag_items", "change": "only in database"}
    assert drift["summarize"] == {"workflow": "summarize", "change": "not in database"}
    assert len(drift) == 3


def test_description_change_is_synced_and_shown_as_drift(store: Store) -> None:
    def described(text: str) -> Workflow:
        return Workflow(
            "count_words",
            input=ItemIn,
            output=WordsOut,
            description=text,
            steps=[ScriptStep("count", run=_count)],
        )

    orchestrator(store, described("Counts words.")).sync_contracts()
    changed = orchestrator(store, described("Counts the words of an item."))
    [drift] = changed.diff_contracts()
    assert drift["change"] == "differs" and drift["fields"] == ["description"]
    [change] = changed.sync_contracts()
    assert (change.action, change.contracts) == ("updated", ())
    assert (
        json.loads(store.registry()[0]["definition"])["description"]
        == "Counts the words of an item."
    )
    assert changed.diff_contracts() == []
