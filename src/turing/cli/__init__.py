"""The `turing` command line. `main()` turns Turing errors into one clear line and an exit code."""

from __future__ import annotations

import sys

from rich.markup import escape

from turing.cli.app import app, state
from turing.errors import TuringError

__all__ = ["app", "main", "register"]


def register() -> None:
    """Import every command module: each registers its commands on `app` when imported."""
    from turing.cli import (  # noqa: F401  (registers)
        batches,
        commands,
        cost,
        dashboard,
        demo,
        ops,
        orchestrate,
        plan,
        sim,
        worker,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: typer handles usage errors; Turing errors print one line unless --debug."""
    register()
    args = _debug_first(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="turing")
    except TuringError as exc:
        if state.debug:
            raise
        state.err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug or a driver error we did not expect: one line, exit 1
        if state.debug:
            raise
        state.err.print(
            f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} "
            "(run again with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(1)


def _debug_first(args: list[str]) -> list[str]:
    """`--debug` anywhere before a `--` means the global option (`turing run --debug` as
    `turing --debug run`): typer knows it only before the subcommand."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    state.debug = True  # also for errors raised before the root callback runs
    rest = [a for a in args[:end] if a != "--debug"]
    return ["--debug", *rest, *args[end:]]
