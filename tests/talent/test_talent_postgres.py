"""The talent pipeline end to end on PostgreSQL, and the same results as on SQLite.

A small sample (40 postings, 40 profiles) is built in a fresh schema of the database at
`TURING_TEST_PG_DSN` (dropped afterwards) and in a SQLite file, from the same seed and
clock. On each, the talent project (its turing.toml with the database replaced) imports
three CVs through `profile_import`, then `Orchestrator.from_config(...)` runs every
workflow with a source (skills for postings and profiles, then the top-5 matches) on the
example's offline actor. Both engines must end with the same rows. Without a reachable
PostgreSQL the test is skipped with the reason, unless `TURING_REQUIRE_PG=1`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from talent import scripts
from talent.generator import build_database, generate_profiles
from talent.matching import rank_candidates
from turing import Orchestrator
from turing.store.db import connect
from turing.testing import postgres_database

TALENT = Path(__file__).resolve().parents[2] / "examples" / "talent"
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
SEED, POSTINGS, PROFILES, IMPORTS = 1121, 40, 40, 3


def pg_dsn() -> str:
    return os.environ.get("TURING_TEST_PG_DSN", DEFAULT_PG_DSN)


def _pg_problem() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'turing[postgres]')"
    try:
        with psycopg.connect(pg_dsn(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped at teardown."""
    problem = _pg_problem()
    if problem is not None:
        message = f"PostgreSQL at {pg_dsn()} (TURING_TEST_PG_DSN) is unreachable: {problem}"
        if os.environ.get("TURING_REQUIRE_PG") == "1":
            pytest.fail(f"{message} (TURING_REQUIRE_PG=1)", pytrace=False)
        pytest.skip(message)
    db = postgres_database(pg_dsn())  # a fresh schema
    try:
        yield db.url
    finally:
        scripts.close_databases()  # the match and import scripts' pools
        db.drop()


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TURING_CONFIG", "TURING_DATABASE", "TURING_ACTOR_SKILLS_EXTRACTOR"):
        monkeypatch.delenv(var, raising=False)


def project(folder: Path, url: str) -> Path:
    """The talent project's turing.toml in `folder`, with `url` as its database."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (TALENT / "turing.toml").read_text(encoding="utf-8").splitlines()
    line = f"database = {json.dumps(url)}"
    replaced = [line if ln.startswith("database") else ln for ln in lines]
    assert replaced != lines
    toml = folder / "turing.toml"
    toml.write_text("\n".join(replaced) + "\n", encoding="utf-8")
    return toml


def run_pipeline(folder: Path, url: str) -> dict[str, Any]:
    """Build the sample at `url`, import CVs, run the pipeline; return what is in the tables."""
    counts = build_database(url, seed=SEED, postings=POSTINGS, profiles=PROFILES, now=NOW)
    assert counts["postings"] == POSTINGS and counts["profiles"] == PROFILES
    cvs = generate_profiles(SEED + 1, IMPORTS, NOW)
    orch = Orchestrator.from_config(project(folder, url))
    try:
        imported = []
        for cv in cvs:
            run = orch.execute_workflow("profile_import", {"cv_text": cv.cv_text, "source": "cv"})
            assert run.ok, run.errors
            imported.append(run.output)
        legacy = orch.execute_workflow(
            "profile_skills_legacy", {"profile_id": 1, "cv_text": cvs[0].cv_text}
        )
        assert legacy.ok, legacy.errors
        report = orch.process_pending_tasks()
        again = orch.process_pending_tasks()
    finally:
        orch.close()
    tables = read_tables(
        url,
        profiles=("SELECT profile_id, full_name, email, source FROM profiles", 1),
        posting_skills=(
            "SELECT posting_id, skill, importance, weight, proficiency, years_required,"
            " reasoning FROM posting_skills",
            2,
        ),
        profile_skills=("SELECT profile_id, skill, confidence, evidence FROM profile_skills", 2),
        posting_matches=(
            "SELECT posting_id, rank, profile_id, score, matched_skills FROM posting_matches",
            2,
        ),
    )
    return {
        "imported": imported,
        "legacy": legacy.output,
        "report": report,
        "again": again,
        "tables": tables,
    }


def read_tables(url: str, **queries: tuple[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Each query's rows, sorted in Python by their first `n` columns (text sorts by code
    point here; the engines' own text orders differ)."""
    out = {}
    db = connect(url)
    try:
        with db.read() as tx:
            for name, (sql, n) in queries.items():
                keyed = [(tuple(list(row.values())[:n]), row) for row in tx.sql(sql)]
                out[name] = [row for _, row in sorted(keyed, key=lambda pair: pair[0])]
    finally:
        db.close()
    return out


def by(rows: list[dict[str, Any]], key: str) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(int(row[key]), []).append(row)
    return out


def check(result: dict[str, Any]) -> None:
    """What a finished pipeline looks like, on any engine."""
    report, tables = result["report"], result["tables"]
    assert report.failed == 0 and not report.failures and report.stopped is None
    assert report.per_workflow["job_skills"].succeeded == POSTINGS
    assert report.per_workflow["profile_skills"].succeeded == PROFILES + IMPORTS
    assert report.per_workflow["match_candidates"].succeeded == POSTINGS
    assert result["again"].processed == 0  # nothing left pending

    imported = result["imported"]
    new_ids = list(range(PROFILES + 1, PROFILES + IMPORTS + 1))
    assert [r["profile_id"] for r in imported] == new_ids
    assert all(r["skills"] > 0 and r["dry_run"] is False for r in imported)
    profiles = {r["profile_id"]: r for r in tables["profiles"]}
    assert sorted(profiles) == list(range(1, PROFILES + IMPORTS + 1))
    for r in imported:
        assert profiles[r["profile_id"]]["full_name"] == r["full_name"]
        assert profiles[r["profile_id"]]["source"] == "cv"

    assert sorted(by(tables["posting_skills"], "posting_id")) == list(range(1, POSTINGS + 1))
    assert sorted(by(tables["profile_skills"], "profile_id")) == sorted(profiles)
    # Every posting's top 5 are what ranking its stored skills against every profile's gives
    # (fewer only where fewer than 5 profiles share any skill with it: a sample this small
    # has a few such postings).
    matches = by(tables["posting_matches"], "posting_id")
    skills = {
        profile_id: {r["skill"]: r["confidence"] for r in rows}
        for profile_id, rows in by(tables["profile_skills"], "profile_id").items()
    }
    candidates = sorted(skills.items())
    full = 0
    for posting_id, wanted in by(tables["posting_skills"], "posting_id").items():
        expected = rank_candidates(
            [{"name": r["skill"], "weight": r["weight"]} for r in wanted], candidates, k=5
        )
        got = matches.get(posting_id, [])
        assert [r["rank"] for r in got] == list(range(1, len(expected) + 1))
        assert [(r["profile_id"], r["score"], json.loads(r["matched_skills"])) for r in got] == [
            (m["profile_id"], m["score"], m["matched_skills"]) for m in expected
        ]
        full += len(got) == 5
    assert full >= POSTINGS // 2  # the sample is not degenerate: most get a full top 5
    assert result["legacy"]["skills"]


def test_talent_pipeline_on_postgres_matches_sqlite(tmp_path: Path, pg_url: str) -> None:
    on_pg = run_pipeline(tmp_path / "pg", pg_url)
    check(on_pg)
    on_sqlite = run_pipeline(tmp_path / "sqlite", f"sqlite:///{tmp_path / 'talent.db'}")
    check(on_sqlite)
    # Same seed and clock: the same skills, the same matches, the same imported profiles.
    assert on_pg["tables"] == on_sqlite["tables"]
    assert on_pg["imported"] == on_sqlite["imported"]
    assert on_pg["legacy"] == on_sqlite["legacy"]


def test_generator_builds_the_same_rows_on_postgres(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'talent.db'}"
    counts = build_database(pg_url, seed=3, postings=25, profiles=6, now=NOW)
    assert counts == build_database(sqlite_url, seed=3, postings=25, profiles=6, now=NOW)
    # Building again replaces what was there (like the SQLite file), queue included.
    assert build_database(pg_url, seed=3, postings=25, profiles=6, now=NOW) == counts
    tables = ("job_families", "skills", "skill_aliases", "postings", "profiles")
    queries = {t: (f"SELECT * FROM {t}", 1) for t in tables}  # first columns: the keys
    assert read_tables(pg_url, **queries) == read_tables(sqlite_url, **queries)
