"""`make demo`: the talent pipeline from an empty folder to matched candidates.

1. Build the sample database (seeded: postings, profiles, skills taxonomy).
2. One workflow on one input, as a user would try it first: `turing exec job_skills` and
   `turing exec match_candidates` on the newest posting.
3. The autonomous pipeline on a model: `turing demo` starts the LLM simulator in-process
   (it speaks Ollama's real HTTP protocol; answers derived from the posting text, with
   faults injected on purpose) and runs the pipeline through the real Ollama provider:
   discover all pending work (postings without skills, profiles without skills, then
   postings without matches), process it with progress, write the results, report repairs
   by kind, re-asks, retries, tokens and simulated cost.
4. A few results read back from the database, then `turing run` again: nothing pending.

Run from examples/talent: `python -m talent.demo [--seed N]`. It uses talent.db (SQLite)
here, or the database TURING_DATABASE names, e.g. a PostgreSQL schema:
`TURING_DATABASE='postgresql://postgres@127.0.0.1:5432/test?schema=talent' python -m talent.demo`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from talent.generator import build_database
from turing.store.db import Database, Tx, connect

HERE = Path(__file__).resolve().parent.parent
console = Console()


def _turing() -> str:
    return shutil.which("turing", path=str(Path(sys.executable).parent)) or "turing"


def turing_exec(workflow: str, payload: dict[str, Any]) -> dict[str, Any]:
    """`turing exec WORKFLOW --json`; a failed run stops the demo with its message."""
    proc = subprocess.run(
        [_turing(), "exec", workflow, "--input", json.dumps(payload), "--json"],
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


def turing(*args: str) -> None:
    """Run a `turing` command here, with its own progress bar and report on this terminal."""
    console.print(f"[dim]$ turing {shlex.join(args)}   (in {HERE.name}/)[/]")
    code = subprocess.call([_turing(), *args], cwd=HERE)
    if code != 0:
        raise SystemExit(f"turing {args[0]} failed with exit code {code}")


def single_posting(database: Database) -> None:
    with database.read() as tx:
        (newest,) = tx.sql(
            "SELECT posting_id, title, company, description FROM postings "
            "ORDER BY fetched_at DESC, posting_id LIMIT 1"
        )
    posting_id, title, company, description = newest.values()
    console.rule(f"1. turing exec on posting {posting_id}: {title} at {company}")
    payload = {
        "posting_id": posting_id,
        "title": title,
        "company": company,
        "description": description,
    }
    skills = turing_exec("job_skills", payload)
    out = skills["output"]
    table = Table(
        "skill", "importance", "weight", "proficiency", "years", title="job_skills (1121)"
    )
    for s in out["skills"][:8]:
        years = "" if s["years_required"] is None else str(s["years_required"])
        table.add_row(s["name"], s["importance"], str(s["weight"]), s["proficiency"], years)
    console.print(table)
    console.print(
        f"[dim]{len(out['skills'])} skills, {skills['attempts']} model call(s), "
        f"{len(skills['repairs'])} repair(s), fingerprint {skills['fingerprint'][:12]}[/]"
    )
    wanted = [{"name": s["name"], "weight": s["weight"]} for s in out["skills"]]
    matched = turing_exec("match_candidates", {"posting_id": posting_id, "skills": wanted, "k": 3})
    best = ", ".join(f"{m['profile_id']} ({m['score']:.2f})" for m in matched["output"]["matches"])
    console.print(
        f"match_candidates top 3 (skills scanned from CV text, none extracted yet): {best}"
    )


def show_results(tx: Tx) -> None:
    console.rule("3. results in the database")
    postings = [
        tuple(row.values())
        for row in tx.sql(
            "SELECT posting_id, title FROM postings ORDER BY fetched_at DESC, posting_id LIMIT 3"
        )
    ]
    for posting_id, title in postings:
        skills = tx.sql(
            "SELECT skill, importance, weight FROM posting_skills WHERE posting_id = :id "
            "ORDER BY weight DESC, skill LIMIT 6",
            {"id": posting_id},
        )
        listed = ", ".join(f"{s['skill']} ({s['weight']}, {s['importance']})" for s in skills)
        console.print(f"[bold]{title}[/] (posting {posting_id}): {listed}")
    table = Table(
        "role", "rank", "candidate", "score", "matched", title="top 5 candidates per role"
    )
    for posting_id, title in postings:
        rows = tx.sql(
            "SELECT m.rank, p.full_name, p.headline, m.score, m.matched_skills"
            " FROM posting_matches m "
            "JOIN profiles p ON p.profile_id = m.profile_id WHERE m.posting_id = :id "
            "ORDER BY m.rank LIMIT 5",
            {"id": posting_id},
        )
        for rank, name, headline, score, matched in (tuple(r.values()) for r in rows):
            who = f"{name}, {headline.split(' | ')[0]}" if headline else name
            role = title if rank == 1 else ""
            table.add_row(
                role, str(rank), who, f"{score:.2f}", f"{len(json.loads(matched))} skills"
            )
    console.print(table)


GOAL = "Extract skills from all jobs fetched today, then match top 5 candidates for each role"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1121)
    args = parser.parse_args()
    url = os.environ.get("TURING_DATABASE") or f"sqlite:///{HERE / 'talent.db'}"
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        for leftover in (db, db.with_name(f"{db.name}-wal"), db.with_name(f"{db.name}-shm")):
            leftover.unlink(missing_ok=True)
        name = db.name
    else:
        name = url.rsplit("@", 1)[-1]  # no credentials on the screen
    console.rule("[bold]Turing demo: the talent example (offline: no real model is needed)")
    started = time.perf_counter()
    counts = build_database(url, seed=args.seed)
    console.print(
        f"Built {name} in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{v:,} {k}" for k, v in counts.items())
    )
    database = connect(url)
    try:
        single_posting(database)
        console.rule("2. the whole pipeline on a (simulated) model: discover, process, report")
        turing("demo", "--responder", "talent.responder:responder", "--profile", "demo")
        with database.read() as tx:
            show_results(tx)
    finally:
        database.close()
    console.rule("4. turing run again: nothing is left pending")
    turing("run")
    console.rule("5. a goal in words becomes a checked plan (the offline planner, no model)")
    turing("plan", GOAL)
    console.print(
        "[dim]Add --execute to run it (here everything is done already), --model ACTOR to let "
        "a model plan it.[/]"
    )
    console.rule("[bold green]done")


if __name__ == "__main__":
    main()
