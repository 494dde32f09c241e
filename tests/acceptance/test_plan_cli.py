"""`turing plan` through the real CLI on the talent example: plan, show, execute, reject."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from talent.generator import build_database

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

TALENT = Path(__file__).resolve().parents[2] / "examples" / "talent"
NOW = datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
TODAY = NOW.date().isoformat()
GOAL = "Extract skills from all jobs fetched today, then match top 5 candidates for each role"


@pytest.fixture
def talent(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    build_database(tmp_path / "talent.db", seed=11, postings=150, profiles=40, now=NOW)
    (tmp_path / "turing.toml").write_text(
        (TALENT / "turing.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return tmp_path, {"PYTHONPATH": str(TALENT)}


def _upgraded(folder: Path, env: dict[str, str], turing: Runner) -> None:
    """Turing's tables exist (any command creates them), so dumps compare only the data."""
    assert turing("db", "upgrade", cwd=folder, env=env).code == 0


def _ids(folder: Path, sql: str) -> set[int]:
    with sqlite3.connect(folder / "talent.db") as conn:
        return {row[0] for row in conn.execute(sql)}


def _dump(folder: Path) -> dict[str, list[Any]]:
    with sqlite3.connect(folder / "talent.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}


def test_plan_shows_the_seed_plan_and_runs_nothing(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    _upgraded(folder, env, turing)
    before = _dump(folder)
    ran = turing("plan", GOAL, "--today", TODAY, cwd=folder, env=env)
    assert ran.code == 0, ran.err
    assert "s1  job_skills" in ran.out and "s2  match_candidates  (after s1)" in ran.out
    assert "graph TD" in ran.out and "s1 --> s2" in ran.out
    assert f"fetched_since={TODAY}" in ran.out and "k=5" in ran.out
    assert _dump(folder) == before

    ran = turing("plan", GOAL, "--today", TODAY, "--json", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    shown = json.loads(ran.out)
    steps = shown["plan"]["steps"]
    assert [(s["id"], s["workflow"], s["after"]) for s in steps] == [
        ("s1", "job_skills", []),
        ("s2", "match_candidates", ["s1"]),
    ]
    assert all(s["for_each"] == {"filters": {"fetched_since": TODAY}} for s in steps)
    assert steps[1]["inputs"] == {"k": 5} and shown["planner"] == "offline"


def test_plan_execute_matches_exactly_todays_postings(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    today = _ids(folder, f"SELECT posting_id FROM postings WHERE fetched_at >= '{TODAY}'")
    assert 0 < len(today) < 150
    ran = turing("plan", GOAL, "--today", TODAY, "--execute", "--json", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["status"] == "succeeded"
    s1, s2 = report["steps"]
    assert (s1["tasks"], s1["succeeded"], s1["failed"]) == (len(today), len(today), 0)
    assert (s2["tasks"], s2["succeeded"], s2["failed"]) == (len(today), len(today), 0)
    assert _ids(folder, "SELECT DISTINCT posting_id FROM posting_skills") == today
    assert _ids(folder, "SELECT DISTINCT posting_id FROM posting_matches") == today
    assert _ids(folder, "SELECT MAX(rank) FROM posting_matches GROUP BY posting_id") <= {
        1, 2, 3, 4, 5,
    }  # fmt: skip

    again = turing("plan", GOAL, "--today", TODAY, "--execute", "--json", cwd=folder, env=env)
    assert again.code == 0, again.err
    assert [s["processed"] for s in json.loads(again.out)["steps"]] == [0, 0]
    with sqlite3.connect(folder / "talent.db") as conn:
        runs = conn.execute("SELECT COUNT(*) FROM turing_runs").fetchone()[0]
    assert runs == 2 * len(today)  # each task ran once, over both invocations


def test_plan_dry_run_writes_nothing(talent: tuple[Path, dict[str, str]], turing: Runner) -> None:
    folder, env = talent
    _upgraded(folder, env, turing)
    before = _dump(folder)
    ran = turing("plan", GOAL, "--today", TODAY, "--dry-run", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    assert "DRY RUN" in ran.out and "succeeded" in ran.out
    assert _dump(folder) == before


def test_plan_errors_are_clear(talent: tuple[Path, dict[str, str]], turing: Runner) -> None:
    folder, env = talent
    ran = turing("plan", "bake a cake", cwd=folder, env=env)
    assert ran.code == 2 and "no registered workflow matches" in ran.err
    assert "Traceback" not in ran.err

    ran = turing("plan", "extract skills from jobs; DROP TABLE postings", cwd=folder, env=env)
    assert ran.code == 2 and "SQL" in ran.err

    cyclic = {
        "goal": "x",
        "steps": [
            {"id": "s1", "workflow": "job_skills", "inputs": {}, "after": ["s2"],
             "for_each": {"filters": {}}},
            {"id": "s2", "workflow": "match_candidates", "inputs": {}, "after": ["s1"],
             "for_each": {"filters": {}}},
        ],
    }  # fmt: skip
    (folder / "plan.json").write_text(json.dumps(cyclic))
    ran = turing("plan", "--file", "plan.json", "--execute", cwd=folder, env=env)
    assert ran.code == 2 and "cycle" in ran.err and "forward reference" in ran.err
    assert _ids(folder, "SELECT id FROM turing_tasks") == set()

    (folder / "broken.json").write_text('{"goal": "x",\n "steps": [}')
    ran = turing("plan", "--file", "broken.json", cwd=folder, env=env)
    assert ran.code == 2 and "broken.json:2:" in ran.err


def test_plan_schema_names_every_workflow(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    ran = turing("plan", "--schema", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    schema = json.loads(ran.out)
    names = {
        b["properties"]["workflow"]["enum"][0]
        for b in schema["properties"]["steps"]["items"]["anyOf"]
    }
    assert names == {"job_skills", "profile_skills", "profile_skills_legacy", "profile_import",
                     "match_candidates"}  # fmt: skip


@pytest.fixture
def simulator() -> Iterator[str]:
    from turing.sim import SimConfig, Simulator

    with Simulator(SimConfig.profile("fast", seed=3, bad_plans=1)) as sim:
        yield sim.url


def test_plan_with_a_model_is_reasked_until_valid(
    talent: tuple[Path, dict[str, str]], turing: Runner, simulator: str
) -> None:
    folder, env = talent
    env = {**env, "TURING_PROVIDER_OLLAMA_URL": simulator}
    ran = turing(
        "plan", GOAL, "--today", TODAY, "--model", "ollama:qwen2.5:7b", "--json",
        cwd=folder, env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    shown = json.loads(ran.out)
    assert shown["planner"] == "llm:ollama:qwen2.5:7b"
    assert shown["notes"] == ["re-asked 1 time(s)"]
    assert [s["workflow"] for s in shown["plan"]["steps"]] == ["job_skills", "match_candidates"]
