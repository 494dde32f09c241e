"""The seed's example goal, planned offline and executed on a generated talent database:
skills for exactly the postings fetched today, then top-5 matches for exactly those."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from talent.generator import build_database
from turing import Orchestrator
from turing.planning import ForEach, PlanReport

TALENT = Path(__file__).resolve().parents[2] / "examples" / "talent"
NOW = datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
SEED_GOAL = "Extract skills from all jobs fetched today, then match top 5 candidates for each role"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("talent_plan") / "talent.db"
    build_database(path, postings=300, profiles=80, now=NOW)
    return path


@pytest.fixture
def project(tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TURING_CONFIG", "TURING_DATABASE", "TURING_ACTOR_SKILLS_EXTRACTOR"):
        monkeypatch.delenv(var, raising=False)
    shutil.copyfile(template, tmp_path / "talent.db")
    toml = tmp_path / "turing.toml"
    toml.write_text((TALENT / "turing.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return toml


@pytest.fixture
def orch(project: Path) -> Iterator[Orchestrator]:
    orchestrator = Orchestrator.from_config(project)
    try:
        yield orchestrator
    finally:
        orchestrator.close()


def query(project: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(project.parent / "talent.db") as conn:
        return conn.execute(sql).fetchall()


def fetched(project: Path) -> dict[int, date]:
    """Each posting's fetch day, read in Python (not by the filter's string comparison)."""
    out = {}
    for posting_id, at in query(project, "SELECT posting_id, fetched_at FROM postings"):
        moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        assert moment <= NOW
        out[int(posting_id)] = moment.astimezone(UTC).date()  # type: ignore[arg-type]
    return out


def with_rows(project: Path, table: str) -> set[int]:
    return {int(r[0]) for r in query(project, f"SELECT DISTINCT posting_id FROM {table}")}  # type: ignore[call-overload]


def ranks(project: Path) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for posting_id, rank in query(
        project, "SELECT posting_id, rank FROM posting_matches ORDER BY posting_id, rank"
    ):
        out.setdefault(int(posting_id), []).append(int(rank))  # type: ignore[call-overload]
    return out


def check_steps(report: PlanReport, n: int) -> None:
    assert report.ok and report.status == "succeeded"
    assert [(s.id, s.workflow, s.mode) for s in report.steps.values()] == [
        ("s1", "job_skills", "for_each"),
        ("s2", "match_candidates", "for_each"),
    ]
    for s in report.steps.values():
        assert (s.status, s.tasks, s.succeeded, s.failed, s.processed) == (
            "succeeded", n, n, 0, n
        ), s.as_dict()  # fmt: skip


def test_seed_goal_extracts_and_matches_exactly_todays_postings(
    project: Path, orch: Orchestrator
) -> None:
    days = fetched(project)
    today = sorted(p for p, d in days.items() if d == NOW.date())
    assert 0 < len(today) < len(days)  # the sample has postings from today and from before

    report = orch.plan_and_execute(SEED_GOAL, today=NOW.date())

    assert report.plan.step("s1").for_each == ForEach({"fetched_since": "2026-11-24"})
    assert report.plan.step("s2").for_each == ForEach({"fetched_since": "2026-11-24"})
    assert report.plan.step("s2").inputs == {"k": 5}
    check_steps(report, len(today))
    assert sorted(with_rows(project, "posting_skills")) == today
    assert sorted(with_rows(project, "posting_matches")) == today
    matched = ranks(project)
    assert all(1 <= len(r) <= 5 and r == list(range(1, len(r) + 1)) for r in matched.values())
    assert any(len(r) == 5 for r in matched.values())
    assert report.steps["s1"].calls == len(today)  # one extraction call per posting
    # the task queue holds exactly those tasks, all done
    queue = query(project, "SELECT workflow, subject, status FROM turing_tasks")
    assert sorted((w, int(s), st) for w, s, st in queue) == sorted(  # type: ignore[call-overload]
        [(w, p, "succeeded") for w in ("job_skills", "match_candidates") for p in today]
    )

    again = orch.plan_and_execute(SEED_GOAL, today=NOW.date())  # nothing left to do today
    assert again.ok
    assert [(s.tasks, s.processed) for s in again.steps.values()] == [(0, 0), (0, 0)]
    assert sorted(with_rows(project, "posting_matches")) == today


def test_yesterday_with_top_three(project: Path, orch: Orchestrator) -> None:
    days = fetched(project)
    yesterday = sorted(p for p, d in days.items() if d == NOW.date() - timedelta(days=1))
    assert yesterday

    report = orch.plan_and_execute(
        "Match the three best candidates for each job, after extracting skills from jobs "
        "fetched yesterday",
        today=NOW.date(),
    )

    assert report.plan.step("s1").workflow == "job_skills"
    assert report.plan.step("s2").inputs == {"k": 3}
    check_steps(report, len(yesterday))
    assert sorted(with_rows(project, "posting_skills")) == yesterday
    assert sorted(with_rows(project, "posting_matches")) == yesterday
    assert all(1 <= len(r) <= 3 for r in ranks(project).values())


def test_dry_run_of_the_seed_goal_writes_nothing(project: Path, orch: Orchestrator) -> None:
    today = [p for p, d in fetched(project).items() if d == NOW.date()]
    report = orch.plan_and_execute(SEED_GOAL, dry_run=True, today=NOW.date())
    assert report.dry_run and report.ok
    assert report.steps["s1"].tasks == report.steps["s1"].succeeded == len(today)
    assert report.steps["s2"].tasks == 0  # no skills were stored, so nothing to match yet
    for table in ("posting_skills", "posting_matches", "turing_tasks", "turing_runs"):
        assert query(project, f"SELECT COUNT(*) FROM {table}") == [(0,)]
