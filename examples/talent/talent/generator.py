"""Seeded sample data for the talent example: job postings and CVs whose ground truth is known.

Every record keeps the truth it was written from (skills with importance and years for a
posting; skills, roles and degrees for a CV), so tests can measure the extractor against it.
All randomness flows from ``random.Random`` instances seeded from ``seed``: the same seed and
the same ``now`` always give identical records and identical database content.

Usage: ``python -m talent.generator --db talent.db [--seed N] [--postings N] [--profiles N]``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from talent._cvs import ProfileWriter
from talent._postings import PostingWriter
from talent._text import families, resolve_now, slug
from talent.records import IMPORTANCES, Posting, Profile, TrueSkill
from talent.taxonomy import load_taxonomy

__all__ = [
    "IMPORTANCES",
    "SCHEMA_PATH",
    "Posting",
    "Profile",
    "TrueSkill",
    "build_database",
    "families",
    "generate_postings",
    "generate_profiles",
    "main",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"


def generate_postings(
    seed: int = 1121, n: int = 1200, now: datetime | None = None
) -> list[Posting]:
    """``n`` postings with ground truth; ids follow ``fetched_at`` order, like a crawler's."""
    moment = resolve_now(now)
    writer = PostingWriter(random.Random(f"talent-postings:{seed}"))
    drafts = sorted((writer.draft(moment) for _ in range(n)), key=lambda p: p.fetched_at)
    return [
        replace(p, posting_id=i, url=f"https://jobs.example.com/{slug(p.company)}/{i}")
        for i, p in enumerate(drafts, start=1)
    ]


def generate_profiles(seed: int = 1121, n: int = 250, now: datetime | None = None) -> list[Profile]:
    """``n`` CV profiles with ground truth; ids follow ``created_at`` order."""
    moment = resolve_now(now)
    writer = ProfileWriter(random.Random(f"talent-profiles:{seed}"))
    drafts = sorted((writer.draft(moment) for _ in range(n)), key=lambda p: p.created_at)
    return [replace(p, profile_id=i) for i, p in enumerate(drafts, start=1)]


def build_database(
    path: str | Path,
    *,
    seed: int = 1121,
    postings: int = 1200,
    profiles: int = 250,
    now: datetime | None = None,
) -> dict[str, int]:
    """Create (or overwrite) a SQLite database with the schema and the sample data."""
    moment = resolve_now(now)
    target = Path(path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    tx = load_taxonomy()
    ids = {skill.name: i for i, skill in enumerate(tx.skills, start=1)}
    family_ids = {f["name"]: i for i, f in enumerate(families(), start=1)}
    posting_rows = [
        (
            p.posting_id,
            p.title,
            p.company,
            p.location,
            family_ids[p.family],
            p.seniority,
            p.description,
            p.url,
            p.fetched_at,
        )
        for p in generate_postings(seed, postings, moment)
    ]
    profile_rows = [
        (
            p.profile_id,
            p.full_name,
            p.email,
            p.headline,
            p.location,
            p.years_experience,
            p.cv_text,
            p.created_at,
            "sample",
        )
        for p in generate_profiles(seed, profiles, moment)
    ]
    conn = sqlite3.connect(target)
    try:
        conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        with conn:
            conn.executemany(
                "INSERT INTO job_families VALUES (?, ?)",
                [(i, name) for name, i in family_ids.items()],
            )
            conn.executemany(
                "INSERT INTO skills VALUES (?, ?, ?, ?)",
                [(ids[s.name], s.name, s.category, ids.get(s.parent or "")) for s in tx.skills],
            )
            conn.executemany(
                "INSERT INTO skill_aliases VALUES (?, ?)",
                [(alias, ids[s.name]) for s in tx.skills for alias in s.aliases],
            )
            conn.executemany("INSERT INTO postings VALUES (?,?,?,?,?,?,?,?,?)", posting_rows)
            conn.executemany("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?)", profile_rows)
        tables = ("job_families", "skills", "skill_aliases", "postings", "profiles")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talent.generator", description=__doc__)
    parser.add_argument("--db", required=True, help="SQLite file to create (overwritten)")
    parser.add_argument("--seed", type=int, default=1121)
    parser.add_argument("--postings", type=int, default=1200)
    parser.add_argument("--profiles", type=int, default=250)
    parser.add_argument("--now", help="ISO-8601 UTC time to generate relative to (default: now)")
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else None
    counts = build_database(
        args.db, seed=args.seed, postings=args.postings, profiles=args.profiles, now=now
    )
    for table, count in counts.items():
        print(f"{table}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
