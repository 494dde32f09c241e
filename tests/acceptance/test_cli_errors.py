"""Bad input through the real CLI: one clear message saying what and where, non-zero exit,
and no traceback unless --debug."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Runner = Callable[..., Any]


pytestmark = pytest.mark.acceptance

ECHO = """
from pydantic import BaseModel
from turing import LLMStep, ScriptStep, Workflow, FakeModel

class In(BaseModel):
    item_id: int
    text: str

class Out(BaseModel):
    item_id: int
    words: int

def count(data):
    return {"item_id": data["item_id"], "words": len(data["text"].split())}

count_words = Workflow(
    "count_words", input=In, output=Out, steps=[ScriptStep("count", run=count)]
)
"""

SCRIPTS = """
import sys
from pydantic import BaseModel
from turing import ScriptStep, Workflow

class In(BaseModel):
    item_id: int

class Out(BaseModel):
    item_id: int

def boom(data):
    raise RuntimeError("disk on fire")

FAIL = "import sys; sys.stderr.write('bad thing happened'); sys.exit(3)"

def cmd(code):
    return [sys.executable, "-c", code]

crash = Workflow("crash", input=In, output=Out, steps=[ScriptStep("boom", run=boom)])
crash_proc = Workflow("crash_proc", input=In, output=Out, steps=[
    ScriptStep("proc", command=cmd(FAIL))])
hang = Workflow("hang", input=In, output=Out, steps=[
    ScriptStep("sleepy", command=cmd("import time; time.sleep(30)"), timeout=0.5)])
chatty = Workflow("chatty", input=In, output=Out, steps=[
    ScriptStep("talk", command=cmd("print('hello, not json')"))])
"""


def no_traceback(text: str) -> bool:
    return "Traceback" not in text


def test_exec_succeeds_and_prints_output(project: Callable[..., Path], turing: Runner) -> None:
    project(ECHO)
    ran = turing("exec", "count_words", "--input", '{"item_id": 4, "text": "a b c"}', "--json")
    assert ran.code == 0, ran.err
    result = json.loads(ran.out)
    assert result["status"] == "succeeded"
    assert result["output"] == {"item_id": 4, "words": 3}
    assert len(result["fingerprint"]) == 64


def test_input_breaking_contract_exits_2_with_field_path(
    project: Callable[..., Path], turing: Runner
) -> None:
    project(ECHO)
    ran = turing("exec", "count_words", "--input", '{"item_id": "four", "text": "a"}')
    assert ran.code == 2
    assert "$.item_id" in ran.err and "integer" in ran.err
    assert "count_words" in ran.err
    assert no_traceback(ran.err)


def test_input_from_file_and_missing_file(
    project: Callable[..., Path], turing: Runner, tmp_path: Path
) -> None:
    project(ECHO)
    (tmp_path / "in.json").write_text('{"item_id": 1, "text": "x y"}')
    assert turing("exec", "count_words", "--input", "@in.json").code == 0
    ran = turing("exec", "count_words", "--input", "@missing.json")
    assert ran.code == 2 and "missing.json" in ran.err and no_traceback(ran.err)


def test_malformed_json_input_names_line_and_column(
    project: Callable[..., Path], turing: Runner
) -> None:
    project(ECHO)
    ran = turing("exec", "count_words", "--input", '{"item_id": 1,,}')
    assert ran.code == 2
    assert "line 1, column" in ran.err and no_traceback(ran.err)


def test_unknown_workflow_suggests_known(project: Callable[..., Path], turing: Runner) -> None:
    project(ECHO)
    ran = turing("exec", "count_wrds", "--input", "{}")
    assert ran.code == 1
    assert "unknown workflow 'count_wrds'" in ran.err and "count_words" in ran.err
    assert no_traceback(ran.err)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[project]\nworkflows = ["flows"\n', "invalid TOML"),
        ('[project]\nworkflow = ["flows"]\n', "project.workflow: unknown key"),
        ('[project]\nworkflows = "flows"\n', "project.workflows"),
        ('[project]\nworkflows = ["no_such_module"]\n', "'no_such_module' not found"),
    ],
)
def test_malformed_turing_toml(
    project: Callable[..., Path], turing: Runner, tmp_path: Path, toml: str, expected: str
) -> None:
    project(ECHO)
    (tmp_path / "turing.toml").write_text(toml)
    ran = turing("workflows", "list")
    assert ran.code == 1
    assert expected in ran.err
    assert no_traceback(ran.err)


def test_template_with_unknown_placeholder_is_a_load_error(
    project: Callable[..., Path], turing: Runner
) -> None:
    project(
        """
        from pydantic import BaseModel
        from turing import LLMStep, Workflow

        class In(BaseModel):
            posting_id: int
            title: str

        class Out(BaseModel):
            posting_id: int

        broken = Workflow("broken", input=In, output=Out, steps=[
            LLMStep("extract", actor="m", prompt="Title: {{ titel }}")])
        """
    )
    ran = turing("workflows", "list")
    assert ran.code == 1
    for part in ("'broken'", "'extract'", "titel", "known: posting_id, title"):
        assert part in ran.err
    assert no_traceback(ran.err)


@pytest.mark.parametrize(
    ("workflow", "kind", "detail"),
    [
        ("crash", "script_crash", "disk on fire"),
        ("crash_proc", "script_crash", "bad thing happened"),
        ("hang", "script_timeout", "0.5s"),
        ("chatty", "script_bad_output", "not JSON"),
    ],
)
def test_script_failures(
    project: Callable[..., Path], turing: Runner, workflow: str, kind: str, detail: str
) -> None:
    project(SCRIPTS)
    ran = turing("exec", workflow, "--input", '{"item_id": 1}')
    assert ran.code == 1
    assert f"({kind})" in ran.err and detail in ran.err
    assert no_traceback(ran.err)


def test_debug_shows_traceback(project: Callable[..., Path], turing: Runner) -> None:
    project(ECHO)
    ran = turing("--debug", "exec", "nope", "--input", "{}")
    assert ran.code != 0
    assert "Traceback" in ran.err and "UnknownWorkflowError" in ran.err


def test_unconfigured_actor_says_how_to_configure(
    project: Callable[..., Path], turing: Runner
) -> None:
    project(
        """
        from pydantic import BaseModel
        from turing import LLMStep, Workflow

        class In(BaseModel):
            item_id: int

        ask = Workflow("ask", input=In, output=In, steps=[
            LLMStep("q", actor="writer", prompt="{{ item_id }}")])
        """
    )
    ran = turing("exec", "ask", "--input", '{"item_id": 1}')
    assert ran.code == 1
    assert "actor 'writer' is not configured" in ran.err and "[actors]" in ran.err
