"""Chains: outputs merged into the next input, type-checked before anything runs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from integration.domain import orchestrator
from turing import FakeModel, LLMStep, ModelRequest, ScriptStep, Workflow
from turing.orchestrator import ChainError
from turing.store import Store


class Text(BaseModel):
    text: str


class Counted(BaseModel):
    text: str
    words: int


class CountedAsText(BaseModel):
    text: str
    words: str


class Labelled(BaseModel):
    words: int
    label: str


class NeedsMissing(BaseModel):
    words: int
    language: str


class Log:
    def __init__(self) -> None:
        self.scripts: list[str] = []


def _script(log: Log, name: str, fn: Any) -> ScriptStep:
    def run(data: dict[str, Any]) -> Any:
        log.scripts.append(name)
        return fn(data)

    return ScriptStep(name, run=run)


def workflows(log: Log) -> list[Workflow]:
    return [
        Workflow(
            "count",
            input=Text,
            output=Counted,
            steps=[
                _script(
                    log,
                    "count_step",
                    lambda d: {"text": d["text"], "words": len(d["text"].split())},
                )
            ],
        ),
        Workflow(
            "count_as_text",
            input=Text,
            output=CountedAsText,
            steps=[_script(log, "as_text", lambda d: {"text": d["text"], "words": "three"})],
        ),
        Workflow(
            "label",
            input=Counted,
            output=Labelled,
            steps=[LLMStep("label_step", prompt="Label {{ text }} ({{ words }} words)", actor="m")],
        ),
        Workflow(
            "needs_language",
            input=NeedsMissing,
            output=Labelled,
            steps=[_script(log, "lang", lambda d: {"words": d["words"], "label": d["language"]})],
        ),
        Workflow(
            "explode",
            input=Counted,
            output=Labelled,
            steps=[_script(log, "boom", lambda d: 1 / 0)],
        ),
    ]


def label_answer(request: ModelRequest) -> str:
    words = request.variables["words"]
    return f'```json\n{{"words": "{words}", "label": "{"long" if words > 2 else "short"}"}}\n```'


@pytest.fixture
def setup(store: Store) -> tuple[Any, Log, FakeModel]:
    log = Log()
    model = FakeModel(label_answer)
    return orchestrator(store, *workflows(log), model=model), log, model


def test_chain_merges_outputs_and_returns_the_last(
    setup: tuple[Any, Log, FakeModel], store: Store
) -> None:
    orch, log, model = setup
    assert orch.check_chain([("count", {"text": "a b c"}), ("label", {})]) == []
    report = orch.chain_workflows([("count", {"text": "a b c"}), ("label", {})])
    assert report.ok and report.status == "succeeded" and report.stopped_at is None
    assert report.output == {"words": 3, "label": "long"}
    assert [r.workflow for r in report.results] == ["count", "label"]
    assert model.requests[0].variables == {"text": "a b c", "words": 3}
    assert log.scripts == ["count_step"]
    assert report.as_dict()["output"] == {"words": 3, "label": "long"}
    # every step is recorded in history (no task)
    assert sorted(r["workflow"] for r in store.runs()) == ["count", "label"]


def test_given_inputs_override_carried_ones(setup: tuple[Any, Log, FakeModel]) -> None:
    orch, _, model = setup
    report = orch.chain_workflows([("count", {"text": "a b c"}), ("label", {"words": 1})])
    assert report.output == {"words": 1, "label": "short"}
    assert model.requests[0].variables["words"] == 1


def test_missing_required_input_is_rejected_before_anything_runs(
    setup: tuple[Any, Log, FakeModel], store: Store
) -> None:
    orch, log, model = setup
    steps = [("count", {"text": "a b"}), ("needs_language", {})]
    problems = orch.check_chain(steps)
    assert len(problems) == 1
    assert "'language'" in problems[0] and "count does not produce it" in problems[0]
    with pytest.raises(ChainError, match="language"):
        orch.chain_workflows(steps)
    assert log.scripts == [] and model.requests == []
    assert store.runs() == []
    # given explicitly, the chain is fine
    assert (
        orch.check_chain([("count", {"text": "a b"}), ("needs_language", {"language": "en"})]) == []
    )


def test_type_mismatch_is_rejected_before_anything_runs(
    setup: tuple[Any, Log, FakeModel], store: Store
) -> None:
    orch, log, model = setup
    steps = [("count_as_text", {"text": "a b c"}), ("label", {})]
    problems = orch.check_chain(steps)
    assert any("$.words" in p and "string" in p and "integer" in p for p in problems), problems
    with pytest.raises(ChainError) as caught:
        orch.chain_workflows(steps)
    assert caught.value.exit_code == 2
    assert "count_as_text output -> label input" in str(caught.value)
    assert log.scripts == [] and model.requests == []
    assert store.runs() == []


def test_invalid_given_input_is_rejected_before_anything_runs(
    setup: tuple[Any, Log, FakeModel],
) -> None:
    orch, log, model = setup
    with pytest.raises(ChainError, match="text"):
        orch.chain_workflows([("count", {"text": 5})])
    with pytest.raises(ChainError, match="at least one"):
        orch.chain_workflows([])
    assert log.scripts == [] and model.requests == []


def test_failing_step_stops_the_chain(setup: tuple[Any, Log, FakeModel], store: Store) -> None:
    orch, log, model = setup
    report = orch.chain_workflows(
        [("count", {"text": "a b"}), ("explode", {}), ("label", {"text": "x", "words": 1})]
    )
    assert not report.ok
    assert (report.status, report.stopped_at) == ("failed", "explode")
    assert report.output is None
    assert [r.workflow for r in report.results] == ["count", "explode"]
    assert report.results[-1].errors[0].kind == "script_crash"
    assert log.scripts == ["count_step", "boom"]
    assert model.requests == []  # the step after the failure never ran
    assert report.as_dict()["stopped_at"] == "explode"
    assert [r["status"] for r in store.runs(failed_only=True)] == ["failed"]


class MaybeCounted(BaseModel):
    text: str
    words: int | None = None


def test_required_input_only_optionally_produced_is_rejected(store: Store) -> None:
    log = Log()
    maybe = Workflow(
        "maybe_count",
        input=Text,
        output=MaybeCounted,
        steps=[_script(log, "maybe", lambda d: {"text": d["text"]})],
    )
    orch = orchestrator(store, maybe, *workflows(log))
    with pytest.raises(ChainError, match="'words' is only optionally produced by maybe_count"):
        orch.chain_workflows([("maybe_count", {"text": "a b"}), ("label", {})])
    assert log.scripts == []
    given = orch.check_chain([("maybe_count", {"text": "a b"}), ("label", {"words": 2})])
    assert given == []
