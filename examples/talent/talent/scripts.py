"""Script steps of the talent workflows: CV checks, profile import and candidate matching."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from talent.matching import load_candidates, rank_candidates
from talent.taxonomy import load_taxonomy
from turing import ScriptContext


def connect(ctx: ScriptContext) -> sqlite3.Connection:
    """Open the project's SQLite database (the example runs on SQLite)."""
    url = str(ctx.settings.get("database", ""))
    if not url.startswith("sqlite:///"):
        raise ValueError(f"the talent scripts need a sqlite:/// database, got {url!r}")
    conn = sqlite3.connect(url[len("sqlite:///") :], timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def check_cv(data: dict[str, Any]) -> dict[str, Any]:
    """Reject CVs that cannot be imported; canonicalise skills; collect warnings."""
    profile = dict(data["extract"])
    warnings: list[str] = []
    for job in profile.get("experience", []):
        end = job.get("end_year")
        if end is not None and end < job["start_year"]:
            start = job["start_year"]
            raise ValueError(
                f"experience at {job['company']!r} ends ({end}) before it starts ({start})"
            )
    this_year = datetime.now(UTC).year
    if any(job["start_year"] > this_year for job in profile.get("experience", [])):
        warnings.append("an experience entry starts in the future")
    taxonomy = load_taxonomy()
    canonical: list[str] = []
    for name in profile.get("skills", []):
        skill = taxonomy.get(name)
        if skill is None:
            warnings.append(f"unknown skill {name!r} dropped")
        elif skill.name not in canonical:
            canonical.append(skill.name)
    profile["skills"] = canonical
    if not profile.get("email"):
        warnings.append("no email address")
    return {"profile": profile, "warnings": warnings}


def import_profile(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    """Insert the checked profile (not in a dry run) and return its id."""
    checked = data["check"]
    profile = checked["profile"]
    with connect(ctx) as conn:
        if ctx.dry_run:
            row = conn.execute("SELECT COALESCE(MAX(profile_id), 0) + 1 FROM profiles").fetchone()
            profile_id = int(row[0])
        else:
            cur = conn.execute(
                "INSERT INTO profiles (full_name, email, headline, location, years_experience,"
                " cv_text, created_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    profile["full_name"],
                    profile.get("email"),
                    profile.get("headline"),
                    profile.get("location"),
                    profile.get("years_experience"),
                    data["cv_text"],
                    datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    data.get("source", "import"),
                ),
            )
            profile_id = int(cur.lastrowid or 0)
    return {
        "profile_id": profile_id,
        "full_name": profile["full_name"],
        "skills": len(profile["skills"]),
        "warnings": checked["warnings"],
        "dry_run": ctx.dry_run,
    }


def match(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    """Top-k candidates for a posting by weighted skill overlap."""
    with connect(ctx) as conn:
        pool = load_candidates(conn)
    candidates = [(c.profile_id, c.skills) for c in pool]
    ranked = rank_candidates(data["skills"], candidates, k=data.get("k", 5))
    return {
        "posting_id": data["posting_id"],
        "matches": ranked,
        "candidates_considered": len(candidates),
        "scored_from_cv_text": sum(1 for c in pool if c.source != "extracted"),
    }
