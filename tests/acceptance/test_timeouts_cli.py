"""Issue 11, item 8, through the real CLI: `turing workflows show` displayed the step's 120 s
while the actor's timeout was what applied. It now shows each LLM step's effective timeout
and where it comes from (the actor's setting, the step's own, or the 60 s default)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

FLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Workflow

class In(BaseModel):
    item_id: int

class Out(BaseModel):
    item_id: int

steps = Workflow(
    "steps", input=In, output=Out,
    steps=[
        LLMStep("by_actor", prompt="{{ item_id }}", actor="slow", timeout=30),
        LLMStep("by_step", prompt="{{ item_id }}", actor="plain", timeout=45),
        LLMStep("by_default", prompt="{{ item_id }}", actor="plain"),
    ],
)
"""


def test_workflows_show_displays_the_effective_timeout_and_its_source(
    tmp_path: Path, turing: Runner
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        '[project]\nworkflows = ["flows"]\n\n[actors]\nplain = "ollama:qwen2.5:7b"\n\n'
        '[actors.slow]\nspec = "ollama:qwen2.5:7b"\ntimeout = 7.5\n'
    )
    ran = turing("workflows", "show", "steps", "--json", cwd=tmp_path)
    assert ran.code == 0, ran.err
    steps = {s["name"]: s for s in json.loads(ran.out)["steps"]}
    assert (steps["by_actor"]["timeout"], steps["by_actor"]["timeout_from"]) == (7.5, "actor slow")
    assert (steps["by_step"]["timeout"], steps["by_step"]["timeout_from"]) == (45.0, "step")
    assert (steps["by_default"]["timeout"], steps["by_default"]["timeout_from"]) == (
        60.0,
        "default",
    )
    text = turing("workflows", "show", "steps", cwd=tmp_path)
    assert "7.5s (actor slow)" in text.out and "60s (default)" in text.out
