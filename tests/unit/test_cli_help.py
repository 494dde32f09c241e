"""Every command the CLI registers, found by walking the application (so a new command
cannot be forgotten), has --help text with an example."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from turing.cli import app, register


def _commands() -> list[tuple[str, ...]]:
    register()  # the same modules `turing` itself loads

    found: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):  # a group (typer's own click or click's)
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), ())
    return sorted(found)


COMMANDS = _commands()


def test_the_walk_finds_the_commands() -> None:
    assert ("run",) in COMMANDS and ("review", "approve") in COMMANDS
    assert len(COMMANDS) >= 35


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="turing")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "turing " in result.output, result.output
