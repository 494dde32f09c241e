"""Every command's --help shows an example ("Example: turing ..."), sub-commands included:
walks the typer application, so a new command without one fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from turing.cli import app


def _root() -> Any:
    from turing.cli import commands, demo, orchestrate, plan, sim, worker  # noqa: F401 (registers)

    return typer.main.get_command(app)


def _walk(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):  # a sub-app: db, contracts, workflows, runs
            yield from _walk(command, (*path, name))


COMMANDS = {" ".join(path): command for path, command in _walk(_root())}
LEAVES = sorted(name for name, command in COMMANDS.items() if not hasattr(command, "commands"))


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="turing", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_the_walk_finds_every_command_and_sub_command() -> None:
    expected = {
        "init", "exec", "find", "capabilities", "discover", "run", "chain", "history", "retry",
        "demo", "plan", "sim-llm", "worker", "stats", "prune", "workflows list",
        "workflows show", "db upgrade", "contracts sync", "contracts diff", "contracts export",
        "runs show",
    }  # fmt: skip
    assert expected <= set(LEAVES)


@pytest.mark.parametrize("name", LEAVES)
def test_every_command_help_has_an_example(name: str) -> None:
    text = _help(*name.split())
    assert "Example: turing " in text, f"turing {name} --help has no 'Example: turing ...' line"
    example = text.split("Example:", 1)[1]
    assert f"turing {name}" in example, f"turing {name} --help: the example does not use it"


def test_the_root_help_has_an_example() -> None:
    assert "Example: turing " in _help()
