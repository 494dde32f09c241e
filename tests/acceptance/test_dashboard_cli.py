"""`turing dashboard` refuses what would expose it: a public address without a token, a
bad port; both before opening anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_public_address_needs_a_token(turing: Runner, tmp_path: Path, host: str) -> None:
    (tmp_path / "turing.toml").write_text('[project]\ndatabase = "sqlite:///app.db"\n')
    ran = turing("dashboard", "--host", host, "--port", "8999")
    assert ran.code != 0
    assert f"--host {host} is not a loopback address" in ran.err and "--token" in ran.err
    assert not (tmp_path / "app.db").exists()  # refused before the database was opened


def test_a_bad_port_is_refused(turing: Runner, tmp_path: Path) -> None:
    (tmp_path / "turing.toml").write_text('[project]\ndatabase = "sqlite:///app.db"\n')
    ran = turing("dashboard", "--port", "70000")
    assert ran.code != 0 and "--port 70000" in ran.err
