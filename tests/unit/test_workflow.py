"""Workflow load-time checks and the fingerprint that says which definition produced a result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from turing.contracts import Contract
from turing.errors import WorkflowDefinitionError
from turing.steps import LLMStep, ScriptStep
from turing.workflow import Workflow


class PostingIn(BaseModel):
    posting_id: int
    text: str


class Extracted(BaseModel):
    skills: list[str]


class Summary(BaseModel):
    summary: str


def clean(data: dict[str, Any]) -> dict[str, Any]:
    return {"text": data["text"].strip()}


def clean_differently(data: dict[str, Any]) -> dict[str, Any]:
    return {"text": data["text"].lower()}


def build(steps: list[Any], **kw: Any) -> Workflow:
    options: dict[str, Any] = {"input": PostingIn, "output": Summary, **kw}
    name = options.pop("name", "talent")
    return Workflow(name, steps=steps, **options)


SUMMARIZE = LLMStep("summarize", "Summarize {{ text }}")


@pytest.mark.parametrize(
    ("make", "step", "fragment"),
    [
        pytest.param(
            lambda: build([SUMMARIZE, LLMStep("summarize", "{{ text }}")]),
            "summarize",
            "duplicate step name",
            id="duplicate-step",
        ),
        pytest.param(
            lambda: build([LLMStep("text", "{{ posting_id }}")]),
            "text",
            "step name shadows an input field of the same name",
            id="shadows-input",
        ),
        pytest.param(
            lambda: build(
                [LLMStep("extract", "{{ text }}", after=("summarize",)), SUMMARIZE],
            ),
            "extract",
            "depends on 'summarize', which is not a step declared before it",
            id="forward-after",
        ),
        pytest.param(
            lambda: build([LLMStep("extract", "{{ text }}", after=("nothing",)), SUMMARIZE]),
            "extract",
            "depends on 'nothing'",
            id="unknown-after",
        ),
        pytest.param(
            lambda: build([ScriptStep("prep", run=clean, command=["true"]), SUMMARIZE]),
            "prep",
            "a script step needs exactly one of run= or command=",
            id="script-both",
        ),
        pytest.param(
            lambda: build([ScriptStep("prep"), SUMMARIZE]),
            "prep",
            "a script step needs exactly one of run= or command=",
            id="script-neither",
        ),
        pytest.param(
            lambda: build([ScriptStep("prep", command=[]), SUMMARIZE]),
            "prep",
            "a script step needs exactly one of run= or command=",
            id="script-empty-command",
        ),
        pytest.param(
            lambda: build([LLMStep("Summarize", "{{ text }}")]),
            "Summarize",
            "step name must be lower_snake_case",
            id="bad-step-name",
        ),
        pytest.param(
            lambda: build([LLMStep("summarize", "{{ text }}", timeout=0)]),
            "summarize",
            "timeout must be positive",
            id="zero-timeout",
        ),
        pytest.param(
            lambda: build([ScriptStep("prep", run=clean, timeout=-1), SUMMARIZE]),
            "prep",
            "timeout must be positive",
            id="negative-script-timeout",
        ),
        pytest.param(
            lambda: build([LLMStep("summarize", "{{ text }}", max_reasks=-1)]),
            "summarize",
            "max_reasks must be >= 0",
            id="negative-reasks",
        ),
        pytest.param(
            lambda: build([LLMStep("extract", "{{ text }}", output=42), SUMMARIZE]),
            "extract",
            "expected a Contract",
            id="bad-step-contract",
        ),
        pytest.param(
            lambda: build([LLMStep("extract", "{{ text }}", output={"type": "bogus"}), SUMMARIZE]),
            "extract",
            "invalid JSON Schema for contract 'talent.extract'",
            id="invalid-step-schema",
        ),
    ],
)
def test_step_definition_errors(make: Callable[[], Workflow], step: str, fragment: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        make()
    assert info.value.workflow == "talent"
    assert info.value.step == step
    assert str(info.value).startswith(f"workflow 'talent', step {step!r}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "name", "fragment"),
    [
        pytest.param({"name": "Talent"}, "Talent", "name must be lower_snake_case", id="upper"),
        pytest.param({"name": "talent-x"}, "talent-x", "lower_snake_case", id="dash"),
        pytest.param({"name": "1talent"}, "1talent", "lower_snake_case", id="digit-first"),
        pytest.param({"name": ""}, "", "lower_snake_case", id="empty"),
        pytest.param({"version": 0}, "talent", "version must be >= 1, got 0", id="version-0"),
        pytest.param({"version": -3}, "talent", "version must be >= 1, got -3", id="version-neg"),
        pytest.param(
            {"subject_key": "job_id"},
            "talent",
            "subject_key 'job_id' is not an input field",
            id="subject-key",
        ),
        pytest.param({"input": 3}, "talent", "expected a Contract", id="bad-input-contract"),
        pytest.param(
            {"output": {"type": 5}}, "talent", "invalid JSON Schema", id="bad-output-schema"
        ),
    ],
)
def test_workflow_definition_errors(kwargs: dict[str, Any], name: str, fragment: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        build([SUMMARIZE], **kwargs)
    assert info.value.workflow == name
    assert info.value.step is None
    assert str(info.value).startswith(f"workflow {name!r}: ")
    assert fragment in str(info.value)


def test_no_steps_is_an_error() -> None:
    with pytest.raises(WorkflowDefinitionError, match="needs at least one step"):
        build([])


def test_a_valid_workflow_compiles_dependencies_and_contracts() -> None:
    workflow = build(
        [
            ScriptStep("prep", run=clean),
            LLMStep("extract", "{{ prep.text }}", output=Extracted),
            LLMStep("grade", "{{ text }}", after=()),
            LLMStep("summarize", "{{ extract.skills }} {{ grade }}", after=("extract", "grade")),
        ],
        subject_key="posting_id",
        version=3,
        description="  Extract\n and   summarize ",
        tags=["talent"],
    )
    deps = {cs.name: cs.deps for cs in workflow.steps}
    assert deps == {
        "prep": (),
        "extract": ("prep",),
        "grade": (),
        "summarize": ("extract", "grade"),
    }
    assert workflow.steps[3].visible == frozenset({"prep", "extract", "grade"})
    by_name = {cs.name: cs for cs in workflow.steps}
    assert by_name["prep"].contract is None  # unchecked intermediate script output
    assert by_name["extract"].contract is not None
    assert by_name["extract"].contract.name == "talent.extract"
    assert by_name["extract"].contract.version == 3
    assert by_name["grade"].contract is not None
    assert by_name["grade"].contract.schema == {"type": "object"}
    assert workflow.final_step is by_name["summarize"]
    assert by_name["summarize"].contract is workflow.output
    assert workflow.input.name == "talent.input"
    assert workflow.output.name == "talent.output"
    assert workflow.description == "Extract and summarize"
    assert workflow.subject_key == "posting_id"

    described = workflow.describe()
    json.dumps(described)  # serialisable
    assert described["fingerprint"] == workflow.fingerprint()
    assert [s["name"] for s in described["steps"]] == ["prep", "extract", "grade", "summarize"]
    assert described["steps"][0] == {"name": "prep", "kind": "script", "after": [], "timeout": 30.0}
    assert described["steps"][3]["after"] == ["extract", "grade"]
    assert described["steps"][3]["actor"] == "default"
    assert repr(workflow) == "Workflow('talent', v3)"


def test_raw_schema_contracts_are_accepted() -> None:
    workflow = Workflow(
        "raw",
        input={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        output={"type": "object", "properties": {"summary": {"type": "string"}}},
        steps=[LLMStep("summarize", "{{ text }}")],
    )
    assert set(workflow.input.fields) == {"text"}
    assert workflow.input.required == frozenset({"text"})


# ------------------------------------------------------------------ fingerprint


def base_steps(**changes: Any) -> list[Any]:
    extract: dict[str, Any] = {
        "name": "extract",
        "prompt": "Extract from {{ text }}",
        "output": Extracted,
        "temperature": 0.0,
        "actor": "default",
    }
    extract.update({k: v for k, v in changes.items() if k in extract or k in ("system", "seed")})
    script = ScriptStep("check", run=changes.get("run", clean), after=("extract",))
    return [
        LLMStep(**extract),
        script,
        LLMStep("summarize", changes.get("summary_prompt", "Summarize {{ extract.skills }}")),
    ]


IDENTITIES = {"default": "ollama:qwen2.5:7b@abc"}


def fingerprint_of(**changes: Any) -> str:
    workflow = build(base_steps(**changes), output=changes.get("wf_output", Summary))
    return workflow.fingerprint(changes.get("identities", IDENTITIES))


def test_fingerprint_is_stable() -> None:
    first = fingerprint_of()
    assert first == fingerprint_of()
    assert len(first) == 64


class SummaryV2(BaseModel):
    summary: str = Field(max_length=500)


class ExtractedV2(BaseModel):
    skills: list[str]
    seniority: str


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"prompt": "Extract skills from {{ text }}"}, id="prompt"),
        pytest.param({"summary_prompt": "Summarise {{ extract.skills }}"}, id="later-prompt"),
        pytest.param({"system": "You are careful."}, id="system-prompt"),
        pytest.param({"output": ExtractedV2}, id="step-contract"),
        pytest.param({"wf_output": SummaryV2}, id="workflow-output-contract"),
        pytest.param({"temperature": 0.7}, id="temperature"),
        pytest.param({"seed": 42}, id="seed"),
        pytest.param({"actor": "big"}, id="actor-reference"),
        pytest.param({"identities": {"default": "ollama:qwen2.5:14b@def"}}, id="actor-identity"),
        pytest.param({"run": clean_differently}, id="script-code"),
    ],
)
def test_fingerprint_changes(changes: dict[str, Any]) -> None:
    assert fingerprint_of(**changes) != fingerprint_of()


def test_fingerprint_changes_with_the_input_contract() -> None:
    class OtherIn(BaseModel):
        posting_id: int
        text: str = Field(min_length=1)

    assert build([SUMMARIZE], input=OtherIn).fingerprint() != build([SUMMARIZE]).fingerprint()


def test_fingerprint_changes_with_version() -> None:
    assert build([SUMMARIZE], version=2).fingerprint() != build([SUMMARIZE]).fingerprint()


def test_fingerprint_ignores_description_and_tags() -> None:
    plain = build([SUMMARIZE]).fingerprint()
    assert build([SUMMARIZE], description="docs", tags=["x"]).fingerprint() == plain


def test_fingerprint_changes_when_a_command_script_file_changes(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text("import json, sys; print(json.dumps(json.load(sys.stdin)))\n")

    def make() -> Workflow:
        return build([ScriptStep("check", command=[sys.executable, str(script)]), SUMMARIZE])

    before = make().fingerprint()
    assert make().fingerprint() == before
    script.write_text("import json, sys; print(json.dumps({'changed': True}))\n")
    assert make().fingerprint() != before


def test_contract_object_can_be_shared() -> None:
    contract = Contract.from_model(Extracted)
    workflow = build([LLMStep("extract", "{{ text }}", output=contract), SUMMARIZE])
    assert workflow.steps[0].contract is contract
