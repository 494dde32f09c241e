"""CLI happy paths: init scaffolds a working project; every command has help with an example."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Runner = Callable[..., Any]


pytestmark = pytest.mark.acceptance

COMMANDS = [
    ("init",),
    ("workflows", "list"),
    ("workflows", "show"),
    ("exec",),
    ("find",),
    ("capabilities",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(turing: Runner, command: tuple[str, ...]) -> None:
    ran = turing(*command, "--help")
    assert ran.code == 0, ran.err
    assert "Example" in ran.out and "turing " in ran.out


def test_init_scaffolds_a_project_that_runs(turing: Runner, tmp_path: Path) -> None:
    ran = turing("init", "proj")
    assert ran.code == 0, ran.err
    proj = tmp_path / "proj"
    listed = turing("workflows", "list", "--json", cwd=proj)
    assert listed.code == 0, listed.err
    assert [w["name"] for w in json.loads(listed.out)] == ["triage_ticket"]
    ticket = '{"ticket_id": 9, "text": "Refund my invoice"}'
    ran = turing("exec", "triage_ticket", "--input", ticket, "--json", cwd=proj)
    assert ran.code == 0, ran.err
    output = json.loads(ran.out)["output"]
    assert output["ticket_id"] == 9 and output["category"] == "billing"
    again = turing("init", "proj")
    assert again.code == 2 and "already exist" in again.err


def test_capabilities_openai_tools(turing: Runner, tmp_path: Path) -> None:
    turing("init", "proj")
    ran = turing("capabilities", "--format", "openai-tools", cwd=tmp_path / "proj")
    assert ran.code == 0, ran.err
    tools = json.loads(ran.out)
    assert tools[0]["type"] == "function"
    fn = tools[0]["function"]
    assert fn["name"] == "triage_ticket"
    assert set(fn["parameters"]["required"]) == {"ticket_id", "text"}
    bad = turing("capabilities", "--format", "yaml", cwd=tmp_path / "proj")
    assert bad.code == 2 and "openai-tools" in bad.err


def test_workflows_show_gives_the_limits_declared_and_in_force(
    turing: Runner, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(
        "from turing import LLMStep, Workflow\n"
        'IN = {"type": "object", "properties": {"text": {"type": "string"}}}\n'
        'tagger = Workflow("tagger", input=IN, output={"type": "object"},\n'
        '    steps=[LLMStep("tag", prompt="{{ text }}", actor="m")],\n'
        '    limits={"concurrency": 4, "rate": ["100/hour", "100000 tokens/min"]})\n'
    )
    (tmp_path / "turing.toml").write_text(
        '[project]\nworkflows = ["flows"]\n[actors]\nm = "ollama:qwen2.5:7b"\n'
        '[limits.concurrency]\n"workflow:tagger" = 2\n'
    )
    ran = turing("workflows", "show", "tagger", "--json")
    assert ran.code == 0, ran.err
    info = json.loads(ran.out)
    assert info["limits"] == {"concurrency": 4, "rate": ["100/hour", "100000 tokens/min"]}
    assert info["limits_in_force"] == ["2 at once", "100/hour", "100000 tokens/min"]
    text = turing("workflows", "show", "tagger")
    assert text.code == 0, text.err
    assert "limits (workflow:tagger, every worker together): 2 at once, 100/hour" in text.out
