"""Acceptance tests run the real `turing` CLI as a subprocess in throwaway projects."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Ran:
    code: int
    out: str
    err: str


Runner = Callable[..., Ran]


@pytest.fixture
def turing(tmp_path: Path) -> Runner:
    """Run `python -m turing ARGS` in `cwd` (default: tmp_path) with a clean TURING_* env."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
    ) -> Ran:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
        env = {**base, "COLUMNS": "200", **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "turing", *args],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        return Ran(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a project with `turing.toml` and a `flows.py` module; return its folder."""

    def make(module: str, actors: str = "") -> Path:
        (tmp_path / "flows.py").write_text(textwrap.dedent(module))
        (tmp_path / "turing.toml").write_text(
            '[project]\nworkflows = ["flows"]\n\n[actors]\n' + textwrap.dedent(actors)
        )
        return tmp_path

    return make
