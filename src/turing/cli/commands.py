"""Commands: init, workflows list|show, exec, find, capabilities."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from turing.cli.app import app, state
from turing.errors import TuringError
from turing.result import RunResult
from turing.steps import LLMStep, effective_timeout

workflows_app = typer.Typer(help="List and inspect workflows.", no_args_is_help=True)
app.add_typer(workflows_app, name="workflows")


class UsageProblem(TuringError):
    """Bad command-line input (not a contract problem): exit code 2 like click's usage errors."""

    exit_code = 2


def _print_json(value: Any) -> None:
    state.out.print_json(json.dumps(value, ensure_ascii=False, default=str))


SCAFFOLD = {
    "turing.toml": "turing.toml.tmpl",
    "workflows.py": "workflows.py.tmpl",
    "schema.sql": "schema.sql.tmpl",
    "README.md": "README.md.tmpl",
}
SCAFFOLD_DB = "turing.db"  # the database turing.toml.tmpl names


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold a working project: turing.toml, a workflow with a source and a SQL sink, and
    a SQLite database holding 8 sample tickets, so `turing run` processes them at once.

    The database is created by init itself from schema.sql (also written, to recreate it or
    to use PostgreSQL); an existing turing.db keeps its rows (--force does not touch data).
    Exit codes: 0 created, 2 files already exist (without --force).

    Example: turing init myproject && cd myproject && turing run
    """
    import sqlite3

    directory.mkdir(parents=True, exist_ok=True)
    clashes = [name for name in SCAFFOLD if (directory / name).exists()]
    if clashes and not force:
        raise UsageProblem(f"{directory}: {', '.join(clashes)} already exist (use --force)")
    scaffold = resources.files("turing.scaffold")
    for name, template in SCAFFOLD.items():
        (directory / name).write_text(
            scaffold.joinpath(template).read_text(encoding="utf-8"), encoding="utf-8"
        )
    schema = (directory / "schema.sql").read_text(encoding="utf-8")
    conn = sqlite3.connect(directory / SCAFFOLD_DB)
    try:
        conn.executescript(schema)  # idempotent: IF NOT EXISTS, ON CONFLICT DO NOTHING
        conn.commit()
        (tickets,) = conn.execute("SELECT count(*) FROM tickets").fetchone()
    finally:
        conn.close()
    state.out.print(
        f"Created a Turing project in [bold]{escape(str(directory))}[/] "
        f"({SCAFFOLD_DB} holds {tickets} sample tickets). Try:"
    )
    state.out.print(f"  cd {escape(str(directory))}")
    state.out.print("  turing run        # triage the tickets into ticket_triage")
    state.out.print("  turing run        # again: nothing pending")
    state.out.print("  turing history")


@workflows_app.command("list")
def workflows_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the project's workflows.

    Example: turing workflows list --json
    """
    registry = state.project().registry
    rows: list[dict[str, Any]] = [
        {
            "name": wf.name,
            "alias": wf.alias,
            "version": wf.version,
            "steps": len(wf.steps),
            "description": wf.description,
        }
        for wf in registry
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "alias", "version", "steps", "description")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["alias"] or ""),
            str(row["version"]),
            str(row["steps"]),
            row["description"],
        )
    state.out.print(table)


@workflows_app.command("show")
def workflows_show(
    name: Annotated[str, typer.Argument(help="Workflow name or numeric alias.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show one workflow: contracts, steps, actors and fingerprint.

    Example: turing workflows show job_skills   (or: turing workflows show 1121)
    """
    project = state.project()
    wf = project.workflow(name)
    info = wf.describe()
    info["fingerprint"] = project.executor().fingerprint(wf)
    scope = f"workflow:{wf.name}"  # what is enforced, with turing.toml's (the stricter wins)
    in_force = [str(k.limit) for k in project.limits.keys_for(workflow=wf.name) if k.scope == scope]
    info["limits_in_force"] = in_force
    for step, cs in zip(info["steps"], wf.steps, strict=True):
        if isinstance(cs.step, LLMStep):  # what each call gets, and who decided it
            first = cs.step.actors[0]  # a cascade's first actor; each applies its own
            seconds, source = effective_timeout(cs.step, _actor_timeout(project, first))
            step["timeout"], step["timeout_from"] = seconds, source
    if as_json:
        _print_json(info)
        return
    state.out.print(
        f"[bold]{wf.name}[/] v{wf.version}" + (f" (alias {wf.alias})" if wf.alias else "")
    )
    state.out.print(wf.description)
    state.out.print(f"fingerprint: {info['fingerprint']}")
    if in_force:
        state.out.print(f"limits ({scope}, every worker together): {', '.join(in_force)}")
    table = Table("step", "kind", "after", "actor", "timeout")
    for step in info["steps"]:
        table.add_row(
            step["name"],
            step["kind"],
            ", ".join(step["after"]),
            " -> ".join(step.get("cascade") or [step.get("actor", "")]),
            f"{step['timeout']:g}s"
            + (f" ({step['timeout_from']})" if "timeout_from" in step else ""),
        )
    state.out.print(table)
    state.out.print("[bold]input contract[/]")
    _print_json(info["input"])
    state.out.print("[bold]output contract[/]")
    _print_json(info["output"])


def _actor_timeout(project: Any, ref: str) -> float | None:
    """The `timeout` an actor's settings give (it wins over the step's), if any."""
    try:
        actor = project.resolve_actor(ref)
    except TuringError:
        return None
    value = getattr(getattr(actor, "settings", None), "timeout", None)
    return float(value) if isinstance(value, int | float) else None


def _read_input(raw: str) -> dict[str, Any]:
    source = "--input"
    text = raw
    if raw.startswith("@"):
        path = Path(raw[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"--input {raw}: cannot read file: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageProblem(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise UsageProblem(f"{source}: the input must be a JSON object, got {type(value).__name__}")
    return value


@app.command("exec")
def exec_(
    name: Annotated[str, typer.Argument(help="Workflow name or numeric alias.")],
    input_: Annotated[
        str, typer.Option("--input", "-i", help="Input as JSON text, or @path to a JSON file.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run everything, but scripts must not write anything.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not answer from (or fill) the response cache.")
    ] = False,
) -> None:
    """Execute one workflow on one input and print the validated output.

    The run is recorded in history (not in a dry run). Exit codes: 0 succeeded, 2 input
    breaks the contract (or bad --input), 1 other failure.

    Example: turing exec job_skills --input @posting.json --json
    """
    from turing.orchestrator import Orchestrator

    project = state.project()
    data = _read_input(input_)
    orch = Orchestrator.from_project(project, use_cache=not no_cache)
    try:
        result = orch.execute_workflow(name, data, dry_run=dry_run)
    finally:
        orch.close()
    if as_json:
        _print_json(result.as_dict())
    else:
        _print_result(result)
    if not result.ok:
        kinds = {e.kind for e in result.errors}
        raise typer.Exit(2 if "input_invalid" in kinds else 1)


def _print_result(result: RunResult) -> None:
    err = state.err
    label = "[green]succeeded[/]" if result.ok else "[bold red]failed[/]"
    dry = " (dry run)" if result.dry_run else ""
    usage = result.usage
    err.print(
        f"{result.workflow} v{result.version}: {label}{dry} in {result.duration_s * 1000:.1f} ms, "
        f"{len(result.attempts)} model call(s), {result.reasks} re-ask(s), "
        f"{usage.retries} retr{'y' if usage.retries == 1 else 'ies'}, {usage.cached} cached, "
        f"{usage.input_tokens}+{usage.output_tokens} tokens, cost {usage.cost:.6f}, "
        f"fingerprint {result.fingerprint[:12]}"
    )
    for step, rep in result.repairs:
        err.print(escape(f"  repaired [{rep.kind}] in step {step} at {rep.path}"), highlight=False)
    for error in result.errors:
        where = f" in step {error.step!r}" if error.step else ""
        err.print(f"[red]error[/] ({error.kind}){escape(where)}: {escape(error.message)}")
        for v in error.violations:
            err.print(escape(f"  - {v.path}: {v.message} [rule: {v.rule}; value: {v.value}]"))
    if result.ok:
        _print_json(result.output)


@app.command()
def find(
    text: Annotated[str, typer.Argument(help="What you want done, in plain words.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many results.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find the workflows that fit a request, best first (BM25 over names, descriptions, fields).

    Example: turing find "extract skills from job"
    """
    matches = state.project().registry.find(text, limit)
    if as_json:
        _print_json([m.as_dict() for m in matches])
        return
    if not matches:
        state.err.print(f"no workflow matches {text!r}")
        raise typer.Exit(1)
    table = Table("score", "name", "alias", "description")
    for m in matches:
        table.add_row(
            f"{m.score:.2f}", m.workflow.name, str(m.workflow.alias or ""), m.workflow.description
        )
    state.out.print(table)


@app.command()
def capabilities(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="json (default) or openai-tools.")
    ] = "json",
) -> None:
    """Print every workflow as a capability with its input and output schema.

    Example: turing capabilities --format openai-tools > tools.json
    """
    if fmt not in ("json", "openai-tools"):
        raise UsageProblem(f"--format must be json or openai-tools, got {fmt!r}")
    _print_json(state.project().registry.capabilities(fmt))
