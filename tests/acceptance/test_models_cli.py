"""Real providers end to end through the CLI, against the simulator on 127.0.0.1: `turing run`
on Ollama's protocol, cache hits that make no HTTP call, an API key that never leaks, and
`turing demo`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from talent.generator import build_database
from talent.responder import responder
from turing.sim import SimConfig, Simulator

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]
TALENT = Path(__file__).resolve().parents[2] / "examples" / "talent"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimConfig.profile("fast", seed=4), responder=responder) as running:
        yield running


@pytest.fixture
def talent(tmp_path: Path) -> Path:
    build_database(tmp_path / "talent.db", seed=3, postings=20, profiles=10)
    (tmp_path / "turing.toml").write_text((TALENT / "turing.toml").read_text(encoding="utf-8"))
    return tmp_path


def _dump(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def test_run_on_ollama_protocol_then_cache_hits(
    talent: Path, sim: Simulator, turing: Runner
) -> None:
    env = {
        "PYTHONPATH": str(TALENT),
        "TURING_PROVIDER_OLLAMA_URL": sim.url,
        "TURING_ACTOR_SKILLS_EXTRACTOR": "ollama:qwen2.5:7b",
    }
    ran = turing("run", "--workflow", "job_skills", "--json", cwd=talent, env=env)
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["per_workflow"]["job_skills"]["succeeded"] == 20
    assert report["calls"] == 20 and report["cached"] == 0
    assert sim.stats()["calls_by_endpoint"] == {"/api/chat": 20}
    runs = json.loads(turing("history", "--limit", "1", "--json", cwd=talent, env=env).out)
    shown = json.loads(
        turing("runs", "show", str(runs[0]["id"]), "--json", cwd=talent, env=env).out
    )
    assert shown["calls_detail"][0]["actor"].startswith(f"ollama:qwen2.5:7b@{sim.url}")
    assert shown["input_tokens"] > 0 and shown["output_tokens"] > 0

    with sqlite3.connect(talent / "talent.db") as conn:
        row = conn.execute(
            "SELECT posting_id, title, company, description FROM postings WHERE posting_id = 1"
        ).fetchone()
    posting = json.dumps(
        dict(zip(("posting_id", "title", "company", "description"), row, strict=True))
    )
    again = turing("exec", "job_skills", "--input", posting, "--json", cwd=talent, env=env)
    assert again.code == 0, again.err
    usage = json.loads(again.out)["usage"]
    assert usage["cached"] == 1 and usage["cost"] == 0 and usage["input_tokens"] == 0
    assert sim.stats()["calls"] == 20  # the cache answered: no HTTP call
    fresh = turing(
        "exec", "job_skills", "--input", posting, "--json", "--no-cache", cwd=talent, env=env
    )
    assert json.loads(fresh.out)["usage"]["cached"] == 0 and sim.stats()["calls"] == 21


def test_api_key_never_reaches_errors_or_history(talent: Path, turing: Runner) -> None:
    secret = "sk-test-DO-NOT-LEAK-4242"
    with Simulator(SimConfig.profile("fast", api_key="the-right-key"), responder=responder) as sim:
        (talent / "turing.toml").write_text(
            '[project]\ndatabase = "sqlite:///talent.db"\nworkflows = ["talent.workflows"]\n'
            '[actors]\nskills_extractor = "gpt"\ncv_parser = "gpt"\n'
            f'[actors.gpt]\nspec = "openai:gpt-4o-mini"\nbase_url = "{sim.openai_url}"\n'
            'api_key_env = "MY_LLM_KEY"\n'
        )
        env = {"PYTHONPATH": str(TALENT), "MY_LLM_KEY": secret}
        ran = turing(
            "run", "--workflow", "job_skills", "--max-tasks", "3", "--json", cwd=talent, env=env
        )
    assert ran.code == 1, ran.err  # every task failed: a run that did not do its job
    report = json.loads(ran.out)
    assert report["failed"] == 3 and report["failures_by_reason"] == {"actor": 3}
    failed = json.loads(turing("history", "--failed", "--json", cwd=talent, env=env).out)
    assert "MY_LLM_KEY" in failed[0]["error"]  # says where the key comes from ...
    assert secret not in ran.out + ran.err  # ... but never the key itself
    assert secret not in _dump(talent / "talent.db")


def test_demo_on_the_simulator(talent: Path, turing: Runner) -> None:
    env = {"PYTHONPATH": str(TALENT)}
    ran = turing(
        "demo", "--profile", "fast", "--responder", "talent.responder:responder", "--json",
        cwd=talent, env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "SIMULATED, OFFLINE" in ran.err
    out = json.loads(ran.out)
    report, stats = out["report"], out["simulator"]
    assert report["per_workflow"]["job_skills"]["succeeded"] == 20
    assert report["per_workflow"]["profile_skills"]["succeeded"] == 10
    assert report["per_workflow"]["match_candidates"]["succeeded"] == 20
    assert stats["calls"] == report["calls"] == 30 and report["cost"] > 0
