"""Candidate matching: weighted skill overlap between a posting and candidate profiles.

score = sum(weight * credit) / sum(weight) over the posting's skills, where credit is the
candidate's confidence in that exact skill, or ``PARTIAL_CREDIT`` times their confidence in a
direct parent or child of it (Django counts half for Python and vice versa), whichever is
higher. ``matched_skills`` lists the posting skills that earned any credit (exact or
partial), ``missing_skills`` the ones that earned none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from talent.extractor import extract_profile_skills
from talent.taxonomy import Taxonomy, load_taxonomy
from turing.store.db import Tx

PARTIAL_CREDIT = 0.5
EXTRACTED = "extracted"  # skills read from the profile_skills table
CV_TEXT = "cv_text"  # no extracted skills yet: scanned from profiles.cv_text on the fly


class Candidate(NamedTuple):
    """A candidate's skills ({canonical name: confidence 0-1}) and where they came from.

    ``source`` is ``"extracted"`` (rows in ``profile_skills``) or ``"cv_text"`` (fallback scan
    of the CV). ``candidate[0]`` and ``candidate[1]`` are the id and skills, so a Candidate
    can be passed wherever a ``(profile_id, skills)`` pair is expected.
    """

    profile_id: int
    skills: dict[str, float]
    source: str


def _canonical(name: str, taxonomy: Taxonomy) -> str:
    skill = taxonomy.get(name)
    return skill.name if skill else name


def _neighbours(name: str, taxonomy: Taxonomy) -> list[str]:
    skill = taxonomy.get(name)
    if skill is None:
        return []
    return ([skill.parent] if skill.parent else []) + taxonomy.children(skill.name)


def rank_candidates(
    posting_skills: Sequence[Mapping[str, Any]],
    candidates: Iterable[tuple[int, dict[str, float]] | Candidate],
    k: int = 5,
    taxonomy: Taxonomy | None = None,
) -> list[dict[str, Any]]:
    """Top-``k`` candidates by weighted skill overlap; zero scores are left out.

    Sorted by score (descending) then profile id; scores are rounded to 4 places.
    """
    tx = taxonomy or load_taxonomy()
    wanted: dict[str, float] = {}
    for item in posting_skills:
        name = _canonical(str(item["name"]), tx)
        wanted[name] = max(wanted.get(name, 0.0), 0.0, float(item["weight"]))
    total = sum(wanted.values())
    if total <= 0 or k <= 0:
        return []
    related = {name: _neighbours(name, tx) for name in wanted}
    ranked: list[dict[str, Any]] = []
    for candidate in candidates:
        profile_id, raw = candidate[0], candidate[1]
        has: dict[str, float] = {}
        for skill_name, confidence in raw.items():
            key = _canonical(skill_name, tx)
            has[key] = max(has.get(key, 0.0), min(1.0, max(0.0, float(confidence))))
        score = 0.0
        matched: list[str] = []
        missing: list[str] = []
        for name, weight in wanted.items():
            partial = [has[n] * PARTIAL_CREDIT for n in related[name] if n in has]
            credit = max([has.get(name, 0.0), *partial])
            score += weight * credit
            (matched if credit > 0 else missing).append(name)
        if score > 0:
            ranked.append(
                {
                    "profile_id": profile_id,
                    "score": round(min(1.0, score / total), 4),
                    "matched_skills": matched,
                    "missing_skills": missing,
                }
            )
    ranked.sort(key=lambda r: (-r["score"], r["profile_id"]))
    return ranked[:k]


def _rows(conn: Tx | sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(conn, sqlite3.Connection):
        return list(conn.execute(sql))
    return [tuple(row.values()) for row in conn.sql(sql)]


def load_candidates(conn: Tx | sqlite3.Connection) -> list[Candidate]:
    """Every profile's skills, by profile id.

    ``conn`` is a transaction of Turing's database layer (SQLite or PostgreSQL; see
    ``turing.store.db``) or a plain ``sqlite3`` connection. Profiles with rows in
    ``profile_skills`` use them (source ``"extracted"``); the others are scanned from their
    CV text with the offline extractor (source ``"cv_text"``), so matching works before
    profile extraction has run.
    """
    extracted: dict[int, dict[str, float]] = {}
    rows = _rows(
        conn, "SELECT profile_id, skill, confidence FROM profile_skills ORDER BY profile_id"
    )
    for profile_id, skill, confidence in rows:
        value = 1.0 if confidence is None else float(confidence)
        extracted.setdefault(int(profile_id), {})[str(skill)] = value
    candidates = [Candidate(pid, skills, EXTRACTED) for pid, skills in extracted.items()]
    for profile_id, cv_text in _rows(conn, "SELECT profile_id, cv_text FROM profiles"):
        if int(profile_id) not in extracted:
            found = extract_profile_skills(int(profile_id), cv_text or "")["skills"]
            skills = {s["name"]: s["confidence"] for s in found}
            candidates.append(Candidate(int(profile_id), skills, CV_TEXT))
    return sorted(candidates, key=lambda c: c.profile_id)
