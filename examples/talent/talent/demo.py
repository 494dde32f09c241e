"""`make demo`: build the sample database, then run job_skills and match_candidates through
`turing exec` on a handful of recent postings and print the skills and top matches.

Run from examples/talent: `python -m talent.demo [--postings N] [--seed N]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from talent.generator import build_database

HERE = Path(__file__).resolve().parent.parent
console = Console()


def turing_exec(workflow: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run `turing exec WORKFLOW --json` as a user would; fail loudly on a failed run."""
    exe = shutil.which("turing", path=str(Path(sys.executable).parent)) or "turing"
    proc = subprocess.run(
        [exe, "exec", workflow, "--input", json.dumps(payload), "--json"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        console.print(proc.stdout, proc.stderr, markup=False)
        raise SystemExit(f"turing exec {workflow} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postings", type=int, default=3, help="how many postings to run")
    parser.add_argument("--seed", type=int, default=1121)
    args = parser.parse_args()

    db = HERE / "talent.db"
    started = time.perf_counter()
    counts = build_database(db, seed=args.seed)
    console.rule("[bold]Turing demo: talent example (offline extractor, no model needed)")
    console.print(
        f"Built {db.name} in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT posting_id, title, company, description FROM postings "
            "ORDER BY fetched_at DESC, posting_id LIMIT ?",
            (args.postings,),
        ).fetchall()
    for posting_id, title, company, description in rows:
        console.rule(f"posting {posting_id}: {title} at {company}")
        skills = turing_exec(
            "job_skills",
            {
                "posting_id": posting_id,
                "title": title,
                "company": company,
                "description": description,
            },
        )
        out = skills["output"]
        table = Table(
            "skill", "importance", "weight", "proficiency", "years", title="job_skills (1121)"
        )
        for s in out["skills"]:
            table.add_row(
                s["name"],
                s["importance"],
                str(s["weight"]),
                s["proficiency"],
                str(s["years_required"] or ""),
            )
        console.print(table)
        console.print(
            f"[dim]{skills['attempts']} model call(s), {len(skills['repairs'])} repair(s), "
            f"fingerprint {skills['fingerprint'][:12]}[/]"
        )
        matched = turing_exec(
            "match_candidates",
            {
                "posting_id": posting_id,
                "skills": [{"name": s["name"], "weight": s["weight"]} for s in out["skills"]],
                "k": 5,
            },
        )["output"]
        table = Table("rank", "profile", "score", "matched skills", title="match_candidates: top 5")
        for rank, m in enumerate(matched["matches"], 1):
            table.add_row(
                str(rank), str(m["profile_id"]), f"{m['score']:.2f}", ", ".join(m["matched_skills"])
            )
        console.print(table)
        console.print(
            f"[dim]{matched['candidates_considered']} candidates considered, "
            f"{matched['scored_from_cv_text']} scored from CV text (no extracted skills yet)[/]"
        )
    console.rule("[bold green]done")


if __name__ == "__main__":
    main()
