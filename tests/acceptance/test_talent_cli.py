"""The talent example through the real CLI: exec, find, show by alias, chain, registry
commands, history, runs show and retry, on a freshly generated sample database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from talent.generator import build_database

pytestmark = pytest.mark.acceptance
Runner = Callable[..., Any]

TALENT = Path(__file__).resolve().parents[2] / "examples" / "talent"


@pytest.fixture
def talent(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project folder with the talent workflows and a small generated database."""
    build_database(tmp_path / "talent.db", seed=7, postings=60, profiles=30)
    (tmp_path / "turing.toml").write_text(
        (TALENT / "turing.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return tmp_path, {"PYTHONPATH": str(TALENT)}


def _posting(folder: Path, posting_id: int = 1) -> dict[str, Any]:
    with sqlite3.connect(folder / "talent.db") as conn:
        row = conn.execute(
            "SELECT posting_id, title, company, description FROM postings WHERE posting_id = ?",
            (posting_id,),
        ).fetchone()
    return dict(zip(("posting_id", "title", "company", "description"), row, strict=True))


def test_exec_job_skills_gives_valid_skills(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    ran = turing(
        "exec", "1121", "--input", json.dumps(_posting(folder)), "--json", cwd=folder, env=env
    )
    assert ran.code == 0, ran.err
    result = json.loads(ran.out)
    assert result["workflow"] == "job_skills" and result["version"] == 2
    skills = result["output"]["skills"]
    assert result["output"]["posting_id"] == 1 and len(skills) >= 3
    assert all(10 <= s["weight"] <= 100 and s["reasoning"] for s in skills)


def test_find_ranks_job_skills_first(talent: tuple[Path, dict[str, str]], turing: Runner) -> None:
    folder, env = talent
    ran = turing("find", "extract skills from job", "--json", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    ranked = json.loads(ran.out)
    assert ranked[0]["name"] == "job_skills"
    profile = [m["score"] for m in ranked if m["name"].startswith("profile_skills")]
    assert profile and ranked[0]["score"] >= 1.5 * max(profile)


def test_show_by_alias_and_capabilities(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    ran = turing("workflows", "show", "2002", "--json", cwd=folder, env=env)
    info = json.loads(ran.out)
    assert info["name"] == "profile_skills" and info["steps"][0]["actor"] == "skills_extractor"
    tools = json.loads(turing("capabilities", "--format", "openai-tools", cwd=folder, env=env).out)
    assert {t["function"]["name"] for t in tools} >= {
        "job_skills",
        "match_candidates",
        "profile_import",
    }


def test_chain_job_skills_into_match_candidates(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    posting = json.dumps(_posting(folder, 3))
    ran = turing(
        "chain", "job_skills", "match_candidates", "--input", posting,
        "--with", 'match_candidates={"k": 3}', "--json", cwd=folder, env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["status"] == "succeeded" and len(report["steps"]) == 2
    assert report["output"]["posting_id"] == 3 and len(report["output"]["matches"]) == 3
    bad = turing(
        "chain",
        "match_candidates",
        "job_skills",
        "--input",
        '{"posting_id": 3, "skills": []}',
        cwd=folder,
        env=env,
    )
    assert bad.code == 2 and "does not type-check" in bad.err and "title" in bad.err


def test_registry_sync_diff_export(talent: tuple[Path, dict[str, str]], turing: Runner) -> None:
    folder, env = talent
    diff = turing("contracts", "diff", cwd=folder, env=env)
    assert diff.code == 1 and "job_skills: not in database" in diff.out
    sync = turing("contracts", "sync", cwd=folder, env=env)
    assert sync.code == 0 and "job_skills v2: created" in sync.out
    again = turing("contracts", "sync", cwd=folder, env=env)
    assert "job_skills v2: unchanged" in again.out
    assert turing("contracts", "diff", cwd=folder, env=env).code == 0
    out = folder / "schemas"
    assert turing("contracts", "export", str(out), cwd=folder, env=env).code == 0
    schema = json.loads((out / "job_skills.output.schema.json").read_text())
    assert schema["properties"]["skills"]["items"]["properties"]["weight"]["maximum"] == 100


def test_run_history_runs_show_and_retry(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    ran = turing("run", "--json", cwd=folder, env=env)
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["per_workflow"]["job_skills"]["succeeded"] == 60
    assert report["per_workflow"]["profile_skills"]["succeeded"] == 30
    assert report["per_workflow"]["match_candidates"]["succeeded"] == 60
    again = json.loads(turing("run", "--json", cwd=folder, env=env).out)
    assert again["processed"] == 0 and again["exit_code"] == 0
    # everything is done: said first; workflows without a source are only an aside
    assert again["idle"].startswith("nothing pending: all ")
    assert "profile_import" in again["idle"] and "no source" in again["idle"]
    runs = json.loads(
        turing("history", "--workflow", "1121", "--limit", "5", "--json", cwd=folder, env=env).out
    )
    assert len(runs) == 5 and all(r["workflow"] == "job_skills" for r in runs)
    shown = json.loads(
        turing("runs", "show", str(runs[0]["id"]), "--json", cwd=folder, env=env).out
    )
    assert shown["calls_detail"][0]["raw"] and json.loads(shown["output"])["skills"]
    human = turing("runs", "show", str(runs[0]["id"]), cwd=folder, env=env)
    assert "attempt 1" in human.out and "raw response" in human.out
    missing = turing("runs", "show", "999999", cwd=folder, env=env)
    assert missing.code == 2 and "no run with id 999999" in missing.err
    nothing = turing("retry", "--failed", cwd=folder, env=env)
    assert nothing.code == 0 and "0 failed task(s) requeued" in nothing.out
    not_failed = turing("retry", str(runs[0]["task_id"]), cwd=folder, env=env)
    assert not_failed.code == 2 and "succeeded, not failed" in not_failed.err


def test_profile_import_dry_run_then_real(
    talent: tuple[Path, dict[str, str]], turing: Runner
) -> None:
    folder, env = talent
    db = folder / "talent.db"
    with sqlite3.connect(db) as conn:
        cv = conn.execute("SELECT cv_text FROM profiles WHERE profile_id = 5").fetchone()[0]
        before = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    payload = json.dumps({"cv_text": cv, "source": "upload"})
    dry = turing("exec", "1126", "--input", payload, "--dry-run", "--json", cwd=folder, env=env)
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["output"]["dry_run"] is True
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] == before
    real = turing("exec", "profile_import", "--input", payload, "--json", cwd=folder, env=env)
    out = json.loads(real.out)["output"]
    assert out["profile_id"] == before + 1 and out["skills"] > 0
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT full_name, source FROM profiles WHERE profile_id = ?", (out["profile_id"],)
        ).fetchone()
    assert row == (out["full_name"], "upload")
    garbage = turing(
        "exec", "profile_import", "--input", '{"cv_text": "nothing that looks like a CV here"}',
        cwd=folder, env=env,
    )  # fmt: skip
    assert garbage.code == 1 and "(output_invalid)" in garbage.err and "$.full_name" in garbage.err
