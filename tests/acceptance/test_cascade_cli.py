"""`turing workflows show` through the real CLI names every actor of a step's cascade, in
the order they are asked, and the fingerprint changes when a later actor of the cascade
resolves to another model."""

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

tiers = Workflow(
    "tiers", input=In, output=Out,
    steps=[LLMStep("label", prompt="{{ item_id }}", actor=["small", "large"])],
)
"""


def toml(large: str) -> str:
    return (
        '[project]\nworkflows = ["flows"]\n\n[actors]\nsmall = "ollama:qwen2.5:3b"\n'
        f'large = "{large}"\n'
    )


def test_workflows_show_names_the_cascade(tmp_path: Path, turing: Runner) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(toml("ollama:qwen2.5:7b"))
    ran = turing("workflows", "show", "tiers", "--json", cwd=tmp_path)
    assert ran.code == 0, ran.err
    info = json.loads(ran.out)
    [step] = info["steps"]
    assert step["actor"] == "small" and step["cascade"] == ["small", "large"]
    text = turing("workflows", "show", "tiers", cwd=tmp_path)
    assert "small -> large" in text.out
    (tmp_path / "turing.toml").write_text(toml("ollama:llama3.1:8b"))
    other = json.loads(turing("workflows", "show", "tiers", "--json", cwd=tmp_path).out)
    assert other["fingerprint"] != info["fingerprint"]  # the second actor is in it
