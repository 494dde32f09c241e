"""`turing demo`: the project's whole pipeline on a model: the built-in simulator (offline,
clearly labelled) or a real one (`--model ollama:qwen2.5:7b`)."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from turing.cli.app import app, state
from turing.cli.commands import UsageProblem, _print_json
from turing.cli.orchestrate import print_report, run_with_progress
from turing.config import ActorTable
from turing.orchestrator import Orchestrator
from turing.steps import LLMStep

SIM_MODEL = "ollama:qwen2.5:7b"
# What the simulated calls are priced at (per million tokens), so the report shows a cost.
SIM_PRICES = {"price_input": 0.15, "price_output": 0.60}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    if not attr:
        raise UsageProblem(f"--responder {ref!r}: expected module:attribute")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageProblem(f"--responder {ref!r}: {exc}") from exc


@app.command()
def demo(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="A real model for every LLM step (default: the simulator)."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where --model is served, e.g. http://127.0.0.1:8000/v1 for an "
            "OpenAI-compatible server (vLLM, llama.cpp, LM Studio).",
        ),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding the key.")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Simulator profile: fast, default, demo, chaos, gpu.")
    ] = "demo",
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 7,
    responder: Annotated[
        str | None,
        typer.Option("--responder", help="Simulator responder as module:attribute."),
    ] = None,
    max_tasks: Annotated[int | None, typer.Option("--max-tasks", "-n")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run the project's pipeline (discover, process, report) with every LLM step on one model.

    Without --model the answers come from Turing's LLM simulator, started in-process on
    127.0.0.1 with a fault profile that exercises repair, re-asks and retries: nothing leaves
    this machine and no real model is involved.

    Example: turing demo --responder talent.responder:responder
    (or with a real model: turing demo --model ollama:qwen2.5:7b, or
    turing demo --model openai:my-model --base-url http://127.0.0.1:8000/v1)
    """
    project = state.project()
    actors = sorted(
        {
            ref
            for wf in project.registry
            for cs in wf.steps
            if isinstance(cs.step, LLMStep)
            for ref in cs.step.actors
        }
    )
    sim = None
    if model is None:
        from turing.sim import SimConfig, Simulator

        config = SimConfig.profile(profile, seed=seed)
        sim = Simulator(config, responder=_load(responder) if responder else None)
        sim.start()
        spec = SIM_MODEL
        table: dict[str, Any] = {"base_url": sim.url, **SIM_PRICES, "timeout": 5.0}
        state.err.print(
            f"[bold yellow]SIMULATED, OFFLINE[/]: every LLM step is answered by the Turing LLM "
            f"simulator at {sim.url} (profile {profile!r}, {config.fault_rate:.0%} of answers "
            "faulty on purpose). No real model is involved."
        )
    else:
        spec = model
        table = {"base_url": base_url, "api_key_env": api_key_env}
        where = f" at {base_url}" if base_url else ""
        state.err.print(f"LLM steps ({', '.join(actors)}) run on [bold]{escape(model)}[/]{where}")
    for name in actors:
        project.config.actors[name] = ActorTable(spec=spec, **table)
    orch = Orchestrator.from_project(project, concurrency=concurrency)
    try:
        report = run_with_progress(orch, max_tasks, False, None, True, as_json)
    finally:
        orch.close()
        stats = sim.stats() if sim is not None else None
        if sim is not None:
            sim.stop()
    if as_json:
        _print_json({"report": report.as_dict(), "simulator": stats})
        return
    print_report(report)
    if stats is not None:
        faults = stats.get("faults", {})
        table_ = Table("simulator", "value", title="simulator counters (/sim/stats)")
        table_.add_row("calls", str(stats.get("calls")))
        table_.add_row("model swaps", str(stats.get("swaps")))
        for kind, n in sorted(faults.items()):
            if n:
                table_.add_row(f"fault injected: {kind}", str(n))
        state.out.print(table_)
