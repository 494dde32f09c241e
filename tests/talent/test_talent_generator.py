"""The seeded generator: determinism, counts, time spread, text shape and clean data pools."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from talent._text import DATA_DIR
from talent.generator import (
    IMPORTANCES,
    SCHEMA_PATH,
    Posting,
    Profile,
    build_database,
    families,
    generate_postings,
    main,
)
from talent.taxonomy import load_taxonomy

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TABLES = ("job_families", "skills", "skill_aliases", "postings", "profiles")
RESULT_TABLES = ("posting_skills", "profile_skills", "posting_matches")


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_default_database_counts(tmp_path: Path, now: datetime) -> None:
    counts = build_database(tmp_path / "t.db", now=now)
    assert counts["postings"] == 1200 and counts["profiles"] == 250
    assert counts["job_families"] >= 20
    assert counts["skills"] == len(load_taxonomy())
    assert counts["skill_aliases"] == sum(len(s.aliases) for s in load_taxonomy())


def test_same_seed_and_now_give_identical_content(tmp_path: Path, now: datetime) -> None:
    first, second, other = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    build_database(first, seed=5, postings=150, profiles=30, now=now)
    build_database(second, seed=5, postings=150, profiles=30, now=now)
    build_database(other, seed=6, postings=150, profiles=30, now=now)
    assert _dump(first) == _dump(second)
    assert first.read_bytes() == second.read_bytes()
    assert _dump(first) != _dump(other)


def test_rebuild_overwrites(tmp_path: Path, now: datetime) -> None:
    path = tmp_path / "t.db"
    build_database(path, postings=40, profiles=10, now=now)
    assert build_database(path, postings=20, profiles=5, now=now)["postings"] == 20


def test_schema_is_idempotent_and_result_tables_start_empty(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
    for table in RESULT_TABLES:
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(postings)")}
    assert "postings_fetched_at_idx" in indexes
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    sources = conn.execute("SELECT DISTINCT source FROM profiles").fetchall()
    assert sources == [("sample",)]


def test_skill_rows_mirror_the_taxonomy(conn: sqlite3.Connection) -> None:
    rows = conn.execute(
        "SELECT s.name, p.name FROM skills s LEFT JOIN skills p ON p.skill_id = s.parent_id"
    ).fetchall()
    tx = load_taxonomy()
    assert {name: parent for name, parent in rows} == {s.name: s.parent for s in tx}
    alias = conn.execute(
        "SELECT s.name FROM skill_aliases a JOIN skills s USING (skill_id) WHERE alias = 'k8s'"
    ).fetchone()
    assert alias == ("Kubernetes",)


def test_fetched_at_spans_thirty_days_with_some_today(
    conn: sqlite3.Connection, now: datetime
) -> None:
    stamps = [row[0] for row in conn.execute("SELECT fetched_at FROM postings")]
    assert all(ISO_UTC.match(s) for s in stamps)
    moments = [_parse(s) for s in stamps]
    assert all(now - timedelta(days=30) < m <= now for m in moments)
    today = [m for m in moments if m.date() == now.date()]
    assert len(today) >= 0.03 * len(moments)
    assert max(moments) - min(moments) > timedelta(days=25)
    ids = [row[0] for row in conn.execute("SELECT posting_id FROM postings ORDER BY fetched_at")]
    assert ids == sorted(ids)


def test_now_defaults_to_the_current_minute(tmp_path: Path) -> None:
    build_database(tmp_path / "t.db", postings=30, profiles=3)
    stamps = [
        row[0]
        for row in sqlite3.connect(tmp_path / "t.db").execute("SELECT fetched_at FROM postings")
    ]
    newest = max(_parse(s) for s in stamps)
    assert datetime.now(newest.tzinfo) - newest < timedelta(days=31)


def test_families_are_complete_and_use_known_skills() -> None:
    tx = load_taxonomy()
    fams = families()
    assert len(fams) >= 20
    names = {f["name"] for f in fams}
    for expected in ("Software Engineering", "Nursing", "Legal", "Teaching", "QA", "DevOps/SRE"):
        assert expected in names
    for family in fams:
        assert len(family["titles"]) >= 4 and len(family["core"]) >= 8, family["name"]
        pools = family["core"] + family["nice"] + family["title_skills"]
        pools += [s for stack in family.get("stacks", []) for s in stack]
        for skill in pools:
            entry = tx.get(skill)
            assert entry is not None and entry.name == skill, (family["name"], skill)


def test_postings_carry_consistent_ground_truth(postings: list[Posting]) -> None:
    for posting in postings:
        names = [s.name for s in posting.skills]
        assert 5 <= len(names) <= 14 and len(names) == len(set(names))
        assert {s.importance for s in posting.skills} <= set(IMPORTANCES)
        assert any(s.importance == "required" for s in posting.skills)
        assert all(s.years is None or 1 <= s.years <= 30 for s in posting.skills)
        assert posting.url.endswith(f"/{posting.posting_id}")


def test_descriptions_are_varied_multi_paragraph_texts(postings: list[Posting]) -> None:
    for posting in postings:
        paragraphs = [p for p in posting.description.split("\n\n") if p.strip()]
        assert len(paragraphs) >= 3, posting.posting_id
    corpus = "\n".join(p.description for p in postings)
    tx = load_taxonomy()
    aliased = [
        p
        for p in postings
        if any(m.surface.casefold() != m.skill.casefold() for m in tx.find(p.description))
    ]
    assert len(aliased) >= len(postings) // 4
    assert any(re.search(rf"(?<!\w){alias}(?!\w)", corpus) for alias in ("Postgres", "k8s", "JS"))
    assert re.search(r"\d\+ years of experience with", corpus)
    assert re.search(r"At least \d+ years of", corpus)
    openings = {p.description.split("\n", 1)[0][:25] for p in postings}
    assert len(openings) > len(postings) // 3
    assert sum("Remote" in p.location for p in postings) > 0


def test_profiles_look_like_cvs(profiles: list[Profile], now: datetime) -> None:
    assert len(profiles) >= 200
    for profile in profiles:
        text = profile.cv_text
        assert profile.full_name in text and profile.email in text
        assert re.search(
            r"(?im)^(experience|work experience|professional experience|employment history)$", text
        )
        assert re.search(r"(?im)^education", text)
        assert 1 <= len(profile.experience) <= 4 and profile.skills
        assert profile.experience[0]["start_year"] >= now.year - profile.years_experience
        assert ISO_UTC.match(profile.created_at)
    assert len({p.family for p in profiles}) >= 20


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_fixed_phrases_never_mention_skills_by_accident() -> None:
    """Only deliberate mentions may produce skills, or the ground truth would lie."""
    tx = load_taxonomy()
    phrases = _strings(json.loads((DATA_DIR / "world.json").read_text(encoding="utf-8")))
    phrases += _strings(json.loads((DATA_DIR / "templates.json").read_text(encoding="utf-8")))
    for family in families():
        phrases += [t for t in family["titles"] if "{skill}" not in t]
        for key in ("duties", "objects", "metrics", "degrees", "noun"):
            phrases += _strings(family[key])
    for phrase in phrases:
        assert tx.find(re.sub(r"\{\w+\}", "X", phrase)) == [], phrase


def test_cli_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    args = ["--db", str(tmp_path / "cli.db"), "--seed", str(seed), "--postings", "25"]
    assert main([*args, "--profiles", "4", "--now", "2026-11-24T08:15:00Z"]) == 0
    out = capsys.readouterr().out
    assert "postings: 25" in out and "profiles: 4" in out


def test_generate_postings_is_pure(postings: list[Posting], now: datetime, seed: int) -> None:
    assert generate_postings(seed, 200, now) == postings
    assert generate_postings(seed + 1, 200, now) != postings
