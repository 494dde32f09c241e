"""Limits declared on workflows: parsing and errors, the merge with turing.toml (the stricter
wins), what `describe()` shows, the fingerprint left alone, and the project's limits."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from turing import LLMStep, Project, Workflow
from turing.errors import WorkflowDefinitionError
from turing.limits import LimitsConfig, WorkflowLimits

IN = {"type": "object", "properties": {"text": {"type": "string"}}}
OUT = {"type": "object", "properties": {"tags": {"type": "array"}}}


def flow(limits: Any = None, name: str = "tagger") -> Workflow:
    return Workflow(
        name,
        input=IN,
        output=OUT,
        steps=[LLMStep("tag", prompt="Tag {{ text }}", actor="m")],
        limits=limits,
    )


def test_limits_from_a_mapping_or_a_workflow_limits() -> None:
    wf = flow({"concurrency": "4", "rate": ["100/hour", "100_000 tokens/min"]})
    assert wf.limits == WorkflowLimits(concurrency=4, rate=("100/hour", "100000 tokens/min"))
    assert flow(WorkflowLimits(rate="50/s")).limits == WorkflowLimits(rate=("50/s",))
    assert flow().limits is None
    assert flow({}).limits is None  # nothing declared is the same as no limits


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"concurrency": 0}, "concurrency: concurrency limit 0: must be a whole number"),
        ({"concurrency": True}, "concurrency: concurrency limit True"),
        ({"rate": "5 apples/s"}, "rate: invalid rate limit '5 apples/s': unknown unit"),
        ({"rate": ["1/s", "2/s"]}, "rate: two requests limits over the same period"),
        ({"tokens": "100 tokens/min"}, "tokens: unknown key"),
        ("50/s", "expected a WorkflowLimits or a mapping"),
    ],
)
def test_bad_limits_name_the_workflow_and_the_problem(limits: Any, message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match="tagger") as info:
        flow(limits)
    assert message in str(info.value)


def test_limits_are_described_but_not_fingerprinted() -> None:
    plain, limited = flow(), flow({"concurrency": 4, "rate": "100/hour"})
    assert "limits" not in plain.describe()  # definitions without limits are unchanged
    assert limited.describe()["limits"] == {"concurrency": 4, "rate": ["100/hour"]}
    other = flow({"concurrency": 8})
    assert plain.fingerprint() == limited.fingerprint() == other.fingerprint()


def test_merge_with_turing_toml_the_stricter_wins() -> None:
    toml = LimitsConfig(
        concurrency={"workflow:a": 2, "workflow:b": 10, "actor:m": 3},
        rate={"workflow:a": ["50/hour", "10/s"], "workflow:b": "1000 tokens/min"},
    )
    merged = toml.with_workflows(
        {
            "a": WorkflowLimits(concurrency=4, rate=("100/hour", "5/s", "7/min")),
            "b": WorkflowLimits(concurrency=5, rate=("500 tokens/min", "2000/day")),
            "c": WorkflowLimits(concurrency=1),
        }
    )
    assert merged.concurrency == {"workflow:a": 2, "workflow:b": 5, "actor:m": 3, "workflow:c": 1}
    assert merged.rate == {
        "workflow:a": ["50/hour", "5/s", "7/min"],  # same windows: the lower; new windows added
        "workflow:b": ["500 tokens/min", "2000/day"],
    }
    assert [str(k) for k in merged.keys_for(workflow="a")] == [
        "workflow:a 2 at once",
        "workflow:a 50/hour",
        "workflow:a 5/s",
        "workflow:a 7/min",
    ]
    assert toml.concurrency["workflow:b"] == 10  # the configuration itself is left alone
    assert toml.with_workflows({}) is toml
    assert toml.with_workflows({"a": WorkflowLimits()}) is toml


def test_the_project_merges_its_workflows_limits(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        textwrap.dedent(
            """
            from turing import LLMStep, Workflow

            IN = {"type": "object", "properties": {"text": {"type": "string"}}}
            OUT = {"type": "object"}
            a = Workflow("a", input=IN, output=OUT,
                         steps=[LLMStep("tag", prompt="{{ text }}", actor="m")],
                         limits={"concurrency": 3, "rate": "20/min"})
            b = Workflow("b", input=IN, output=OUT,
                         steps=[LLMStep("tag", prompt="{{ text }}", actor="m")])
            """
        )
    )
    (tmp_path / "turing.toml").write_text(
        '[project]\nworkflows = ["flows"]\n[limits.concurrency]\n"workflow:a" = 2\nglobal = 9\n'
    )
    project = Project.load(tmp_path / "turing.toml")
    assert [str(k) for k in project.limits.keys_for(workflow="a")] == [
        "global 9 at once",
        "workflow:a 2 at once",
        "workflow:a 20/min",
    ]
    assert [str(k) for k in project.limits.keys_for(workflow="b")] == ["global 9 at once"]
    assert project.config.limits.rate == {}  # turing.toml as read
    project.registry.add(flow({"rate": "1/s"}, name="late"))  # added later: seen too
    assert [str(k) for k in project.limits.keys_for(workflow="late")][-1] == "workflow:late 1/s"
