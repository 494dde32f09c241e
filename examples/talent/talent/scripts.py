"""Script steps of the talent workflows: CV checks, profile import and candidate matching.

The scripts reach the project's database (SQLite or PostgreSQL) through Turing's own
database layer: one `Database` per URL for the life of the process, SQL with `:name`
parameters on both dialects.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from talent.matching import load_candidates, rank_candidates
from talent.taxonomy import load_taxonomy
from turing import ScriptContext
from turing.store.db import Database, connect

_pools: dict[str, Database] = {}
_lock = threading.Lock()


@contextmanager
def database(ctx: ScriptContext) -> Iterator[Database]:
    """The project's database (`database` in turing.toml, or TURING_DATABASE).

    SQLite is opened for each use and closed after it (cheap, and never a stale handle on
    a file rebuilt since); a PostgreSQL connection pool is opened once per URL and kept.
    """
    url = str(ctx.settings.get("database") or "")
    if not url:
        raise ValueError("the talent scripts need the project's database (none is set)")
    if url.startswith("sqlite:"):
        db = connect(url)
        try:
            yield db
        finally:
            db.close()
        return
    with _lock:
        if url not in _pools:
            _pools[url] = connect(url, pool_size=2)
        pooled = _pools[url]
    yield pooled


@atexit.register
def close_databases() -> None:
    """Close the connection pools the scripts opened (tests call it before dropping a schema)."""
    with _lock:
        while _pools:
            _pools.popitem()[1].close()


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


INSERT_PROFILE = (
    "INSERT INTO profiles (full_name, email, headline, location, years_experience, cv_text,"
    " created_at, source) VALUES (:full_name, :email, :headline, :location, :years_experience,"
    " :cv_text, :created_at, :source) RETURNING profile_id"
)


def import_profile(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    """Insert the checked profile (not in a dry run) and return its id."""
    checked = data["check"]
    profile = checked["profile"]
    if ctx.dry_run:
        with database(ctx) as db, db.read() as tx:
            row = tx.sql("SELECT COALESCE(MAX(profile_id), 0) + 1 AS next_id FROM profiles")
        profile_id = int(row[0]["next_id"])
    else:
        values = {
            "full_name": profile["full_name"],
            "email": profile.get("email"),
            "headline": profile.get("headline"),
            "location": profile.get("location"),
            "years_experience": profile.get("years_experience"),
            "cv_text": data["cv_text"],
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": data.get("source", "import"),
        }
        with database(ctx) as db, db.tx() as tx:
            profile_id = int(tx.sql(INSERT_PROFILE, values)[0]["profile_id"])
    return {
        "profile_id": profile_id,
        "full_name": profile["full_name"],
        "skills": len(profile["skills"]),
        "warnings": checked["warnings"],
        "dry_run": ctx.dry_run,
    }


def match(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    """Top-k candidates for a posting by weighted skill overlap."""
    with database(ctx) as db, db.read() as tx:
        pool = load_candidates(tx)
    candidates = [(c.profile_id, c.skills) for c in pool]
    ranked = rank_candidates(data["skills"], candidates, k=data.get("k", 5))
    return {
        "posting_id": data["posting_id"],
        "matches": ranked,
        "candidates_considered": len(candidates),
        "scored_from_cv_text": sum(1 for c in pool if c.source != "extracted"),
    }
