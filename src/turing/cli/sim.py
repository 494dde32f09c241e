"""Command: sim-llm, the offline LLM simulator speaking Ollama's and OpenAI's protocols."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from turing._net import is_loopback
from turing.cli.app import app, state
from turing.cli.commands import UsageProblem
from turing.errors import ConfigError


@app.command("sim-llm")
def sim_llm(
    host: Annotated[
        str, typer.Option("--host", help="Loopback address to listen on (never a public one).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port (11434 is Ollama's; 0 picks a free one).")
    ] = 11434,
    profile: Annotated[
        str,
        typer.Option("--profile", help="fast, default, demo, chaos or gpu (latency and faults)."),
    ] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same answers and faults.")] = 0,
    responder: Annotated[
        str | None,
        typer.Option(
            "--responder",
            help="module:attribute of a responder (default: schema-valid generic data).",
        ),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option("--time-scale", help="Multiply every modelled delay (0 = no waiting)."),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Also serve this model name (repeatable)."),
    ] = None,
    bad_plans: Annotated[
        int,
        typer.Option(
            "--bad-plans",
            help="Answer Turing's planner with this many invalid plans per goal first.",
        ),
    ] = 0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Require this environment variable's value as the OpenAI Bearer key.",
        ),
    ] = None,
) -> None:
    """Serve a simulated LLM (offline) on Ollama's and OpenAI's HTTP protocols until Ctrl-C.

    Schema-valid answers, modelled latency, model swaps and faults; counters at /sim/stats.

    Example: turing sim-llm --profile demo --seed 1 --responder talent.responder:responder
    """
    from turing.sim import SimConfig, load_responder, serve

    if not is_loopback(host):
        raise UsageProblem(
            f"--host {host} is not a loopback address: the simulator only listens on this "
            "machine (use 127.0.0.1, ::1 or localhost)"
        )
    overrides: dict[str, object] = {"seed": seed, "bad_plans": bad_plans}
    if time_scale is not None:
        overrides["time_scale"] = time_scale
    if api_key:
        key = os.environ.get(api_key)
        if not key:
            raise ConfigError(f"--api-key-env {api_key}: that environment variable is not set")
        overrides["api_key"] = key
    config = SimConfig.profile(profile, **overrides)
    if models:
        config = config.with_(known_models=(*config.known_models, *models))
    answerer = load_responder(responder) if responder else None

    def ready(url: str) -> None:
        out = state.out
        faults = ", ".join(f"{k} {v:.1%}" for k, v in config.faults.items()) or "none"
        out.print(f"[bold]Simulated LLM server[/] (offline, no real model) on [bold]{url}[/]")
        out.print(
            f"  profile {config.name}, seed {config.seed}, time scale {config.time_scale:g}, "
            f"{config.models_resident or 'unlimited'} model(s) resident, swap {config.swap_s:g}s"
        )
        out.print(f"  faults: {faults}")
        out.print(
            f"  responder: {responder or 'generic schema responder'} (plans for turing plan"
            + (f", {config.bad_plans} invalid first)" if config.bad_plans else ")")
        )
        out.print(f"  models: {', '.join(config.listed_models())}")
        out.print(f"  Ollama: {url}/api/chat   OpenAI: {url}/v1   stats: {url}/sim/stats")
        out.print("Point Turing at it:")
        out.print(
            f"  TURING_PROVIDER_OLLAMA_URL={url} TURING_ACTOR_SKILLS_EXTRACTOR=ollama:qwen2.5:7b"
            " turing run"
        )
        out.print(
            f"  TURING_PROVIDER_OPENAI_URL={url}/v1"
            " TURING_ACTOR_SKILLS_EXTRACTOR=openai:gpt-4o-mini turing run"
        )
        out.print("Press Ctrl-C to stop.", highlight=False)

    serve(config, responder=answerer, host=host, port=port, on_ready=ready)
