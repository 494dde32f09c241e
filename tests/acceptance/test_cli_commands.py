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
