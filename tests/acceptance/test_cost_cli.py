"""The cost commands as a user runs them: `turing estimate` before spending, a period budget
that makes work wait (not fail) in `turing run`, and `turing stats` showing the budget."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from acceptance.conftest import Runner, rows

FLOWS = textwrap.dedent(
    """
    import json
    from pydantic import BaseModel
    from turing import FakeModel, LLMStep, ModelResponse, Sink, Source, Usage, Workflow

    class In(BaseModel):
        item_id: int
        text: str

    class Out(BaseModel):
        item_id: int
        label: str

    def answer(request):
        out = {"item_id": request.variables["item_id"], "label": "short"}
        return ModelResponse(json.dumps(out), Usage(20, 10, 1, 0.1), "priced")

    class Priced(FakeModel):
        def quote(self, request):
            return Usage(20, 10, 1, 0.1)

    ACTORS = {"priced": Priced(answer)}

    label = Workflow(
        "label",
        input=In,
        output=Out,
        subject_key="item_id",
        source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS "
                          "(SELECT 1 FROM labels l WHERE l.item_id = i.item_id)"),
        sink=Sink.sql("INSERT INTO labels (item_id, label) VALUES (:item_id, :label)"),
        steps=[LLMStep("label", prompt="Label item {{ item_id }}: {{ text }}", actor="m")],
    )
    """
)


@pytest.fixture
def cost_project(tmp_path: Path) -> Path:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        conn.execute("CREATE TABLE labels (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)",
            [(i, " ".join(["word"] * (10 * i))) for i in range(1, 11)],
        )
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "turing.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            database = "sqlite:///{db}"
            workflows = ["flows"]

            [actors]
            m = "priced"

            [limits.budget]
            "workflow:label" = "0.3 USD/day"
            """
        )
    )
    return tmp_path


def test_a_full_budget_makes_work_wait_and_stats_shows_it(
    cost_project: Path, turing: Runner
) -> None:
    ran = turing("run", "--json", "--concurrency", "1", cwd=cost_project)
    report = json.loads(ran.out)
    assert ran.code == 3, ran.err  # stopped by a budget: work is left, nothing failed
    assert report["succeeded"] == 3 and report["failed"] == 0  # 0.3 USD at 0.1 a call
    assert "0.3 USD/day" in report["waiting"]["label"]
    url = f"sqlite:///{cost_project / 'app.db'}"
    left = rows(url, "SELECT status, attempts FROM turing_tasks WHERE status <> 'succeeded'")
    assert len(left) == 7 and {(r["status"], r["attempts"]) for r in left} == {("pending", 0)}
    stats = turing("stats", "--json", cwd=cost_project)
    assert stats.code == 0, stats.err
    [budget] = json.loads(stats.out)["budgets"]
    assert budget["scope"] == "workflow:label" and budget["limit"] == 0.3
    assert budget["spent"] == pytest.approx(0.3) and budget["held"] == 0
    text = turing("stats", cwd=cost_project)
    assert "workflow:label" in text.out and "0.3 USD/day" in text.out and "full" in text.out


def test_estimate_counts_the_backlog_before_spending(cost_project: Path, turing: Runner) -> None:
    ran = turing("estimate", "--json", cwd=cost_project)
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)
    assert found["workflows"]["label"] == {"tasks": 10, "queued": 0, "new": 10}
    [step] = found["steps"]
    assert step["actor"] == "m" and step["sampled"] == 10
    assert step["history"].startswith("none: defaults")
    assert step["tokenizer"] == "approximate: ~4 chars/token"
    # item i has 10*i words: the longest prompt is far longer than the shortest
    assert step["prompt_tokens"] > 10 * 100 and step["cost"] is None  # a module actor
    url = f"sqlite:///{cost_project / 'app.db'}"
    assert rows(url, "SELECT COUNT(*) AS n FROM turing_tasks")[0]["n"] == 0  # nothing queued
    # after a run, history says one call per task with the answers' real size
    turing("run", "--concurrency", "1", cwd=cost_project)
    after = json.loads(turing("estimate", "--json", cwd=cost_project).out)
    [step] = after["steps"]
    assert after["tasks"] == 7 and step["calls_per_task"] == 1.0
    assert step["answer_tokens_per_call"] == 10.0  # the fake model's usage
    assert step["history"].startswith("fingerprint")


def test_dry_run_shows_the_estimate_and_a_bad_workflow_is_refused(
    cost_project: Path, turing: Runner
) -> None:
    ran = turing("run", "--dry-run", "--max-tasks", "1", cwd=cost_project)
    assert "estimate of the whole pending backlog" in ran.out, ran.err
    assert "approximate: ~4 chars/token" in ran.out
    as_json = json.loads(turing("run", "--dry-run", "--max-tasks", "1", "--json",
                                cwd=cost_project).out)  # fmt: skip
    assert as_json["estimate"]["tasks"] == 10
    bad = turing("estimate", "--workflow", "nope", cwd=cost_project)
    assert bad.code != 0 and "nope" in bad.err and "Traceback" not in bad.err


def test_estimate_on_the_talent_example_with_a_priced_openai_actor(
    tmp_path: Path, turing: Runner
) -> None:
    from talent.generator import build_database

    talent = Path(__file__).resolve().parents[2] / "examples" / "talent"
    build_database(tmp_path / "talent.db", seed=7, postings=60, profiles=30)
    toml = (talent / "turing.toml").read_text(encoding="utf-8")
    toml = toml.replace('skills_extractor = "talent:offline"', 'skills_extractor = "gpt"')
    toml += '\n[actors.gpt]\nspec = "openai:gpt-4o-mini"\nprice_input = 0.15\nprice_output = 0.6\n'
    (tmp_path / "turing.toml").write_text(toml, encoding="utf-8")
    ran = turing(
        "estimate", "--workflow", "job_skills", "--json", "--sample", "5",
        cwd=tmp_path, env={"PYTHONPATH": str(talent)},
    )  # fmt: skip
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)
    assert found["workflows"]["job_skills"]["tasks"] == 60  # every posting, none queued
    [step] = found["steps"]
    assert (
        step["actor"] == "skills_extractor"
        and step["model"] == "gpt-4o-mini"
        and step["sampled"] == 5
    )
    assert step["tokenizer"].startswith(("tiktoken", "approximate: ~4 chars/token"))
    assert step["prompt_tokens"] > 60 * 100  # postings are paragraphs, the prompt a page
    expected = (step["prompt_tokens"] * 0.15 + step["answer_tokens"] * 0.6) / 1e6
    assert step["cost"] == pytest.approx(expected, rel=1e-4)
    assert step["batch_cost"] == pytest.approx(step["cost"] / 2, rel=1e-4)
    assert found["cost"] == pytest.approx(step["cost"], rel=1e-4)
