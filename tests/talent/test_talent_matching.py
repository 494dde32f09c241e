"""Candidate ranking (weighted overlap, partial credit, ordering) and loading from SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import talent.contracts as talent_contracts
from talent.extractor import extract_profile_skills
from talent.generator import build_database
from talent.matching import CV_TEXT, EXTRACTED, Candidate, load_candidates, rank_candidates
from talent.taxonomy import Skill, Taxonomy

POSTING = [{"name": "Python", "weight": 60}, {"name": "SQL", "weight": 40}]


def test_weighted_overlap_and_ordering() -> None:
    candidates = [
        (1, {"Python": 1.0}),
        (2, {"Python": 0.5, "SQL": 1.0}),
        (3, {"SQL": 1.0, "Python": 0.5}),
        (4, {"Excel": 1.0}),
    ]
    ranked = rank_candidates(POSTING, candidates)
    assert [(r["profile_id"], r["score"]) for r in ranked] == [(2, 0.7), (3, 0.7), (1, 0.6)]
    assert ranked[0]["matched_skills"] == ["Python", "SQL"] and ranked[0]["missing_skills"] == []
    assert ranked[2]["matched_skills"] == ["Python"] and ranked[2]["missing_skills"] == ["SQL"]


def test_zero_scores_are_excluded_and_k_limits() -> None:
    candidates = [(i, {"Python": i / 10}) for i in range(11)]
    ranked = rank_candidates(POSTING, candidates, k=3)
    assert [r["profile_id"] for r in ranked] == [10, 9, 8]
    assert len(rank_candidates(POSTING, candidates, k=50)) == 10  # profile 0 scores 0
    assert rank_candidates(POSTING, candidates, k=0) == []
    assert rank_candidates([], candidates) == []
    assert rank_candidates(POSTING, [(1, {"Figma": 1.0})]) == []


def test_partial_credit_for_parent_and_child_skills() -> None:
    ranked = rank_candidates([{"name": "Python", "weight": 100}], [(1, {"Django": 1.0})])
    assert ranked == [
        {"profile_id": 1, "score": 0.5, "matched_skills": ["Python"], "missing_skills": []}
    ]
    ranked = rank_candidates([{"name": "Django", "weight": 100}], [(1, {"Python": 0.8})])
    assert ranked[0]["score"] == 0.4
    exact_beats_partial = rank_candidates(
        [{"name": "Python", "weight": 10}], [(1, {"Python": 0.9, "Django": 1.0})]
    )
    assert exact_beats_partial[0]["score"] == 0.9
    # grandparents do not count: Keras -> TensorFlow -> Deep Learning
    assert rank_candidates([{"name": "Deep Learning", "weight": 5}], [(1, {"Keras": 1.0})]) == []


def test_aliases_are_canonicalised_and_scores_rounded() -> None:
    ranked = rank_candidates(
        [{"name": "Postgres", "weight": 30}, {"name": "k8s", "weight": 70}],
        [(7, {"PostgreSQL": 0.333333}), (8, {"kubernetes": 2.0})],
    )
    assert [(r["profile_id"], r["score"]) for r in ranked] == [(8, 0.7), (7, 0.1)]
    assert ranked[0]["matched_skills"] == ["Kubernetes"]
    assert all(0 <= r["score"] <= 1 and round(r["score"], 4) == r["score"] for r in ranked)


def test_custom_taxonomy() -> None:
    tx = Taxonomy(
        [Skill("Cooking", "home", (), None), Skill("Baking", "home", ("pastry",), "Cooking")]
    )
    ranked = rank_candidates(
        [{"name": "Cooking", "weight": 1}], [(1, {"pastry": 1.0})], taxonomy=tx
    )
    assert ranked[0]["score"] == 0.5


def test_output_satisfies_the_workflow_contract() -> None:
    for match in rank_candidates(POSTING, [(1, {"Python": 1.0}), (2, {"Django": 1.0})]):
        talent_contracts.Candidate.model_validate(match)


@pytest.fixture
def small_db(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "m.db"
    build_database(path, postings=5, profiles=6)
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO profile_skills (profile_id, skill, confidence, evidence) VALUES (?, ?, ?, ?)",
        [(2, "Python", 0.9, "x"), (2, "SQL", 0.5, "y"), (5, "Figma", None, "z")],
    )
    return conn


def test_load_candidates_prefers_extracted_rows_and_falls_back_to_cv_text(
    small_db: sqlite3.Connection,
) -> None:
    candidates = load_candidates(small_db)
    assert [c.profile_id for c in candidates] == [1, 2, 3, 4, 5, 6]
    sources = {c.profile_id: c.source for c in candidates}
    assert sources == {1: CV_TEXT, 2: EXTRACTED, 3: CV_TEXT, 4: CV_TEXT, 5: EXTRACTED, 6: CV_TEXT}
    by_id = {c.profile_id: c for c in candidates}
    assert by_id[2].skills == {"Python": 0.9, "SQL": 0.5}
    assert by_id[5].skills == {"Figma": 1.0}
    assert all(by_id[i].skills for i in (1, 3, 4, 6))
    cv = small_db.execute("SELECT cv_text FROM profiles WHERE profile_id = 1").fetchone()[0]
    expected = extract_profile_skills(1, cv)["skills"]
    assert by_id[1].skills == {s["name"]: s["confidence"] for s in expected}


def test_candidates_plug_straight_into_ranking(small_db: sqlite3.Connection) -> None:
    candidates = load_candidates(small_db)
    ranked = rank_candidates(POSTING, candidates, k=10)
    assert ranked[0]["profile_id"] == 2 and ranked[0]["score"] == 0.74
    pairs = rank_candidates(POSTING, [(c.profile_id, c.skills) for c in candidates], k=10)
    assert pairs == ranked
    assert isinstance(candidates[0], Candidate) and candidates[0][0] == candidates[0].profile_id
