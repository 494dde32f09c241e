"""Scenario f: two `turing db upgrade` at once on a fresh database. Both processes import
everything first and wait at a barrier (a file), so their first statements meet; a few
rounds, each pair on a new database. Neither may crash (exit code, error line or
traceback) and the schema must come out whole, each migration recorded once."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from chaos.harness import PrivatePostgres, clean_env
from turing.store.db import connect

pytestmark = pytest.mark.chaos

ROUNDS = 4
RACERS = 2
# `turing db upgrade` through the CLI's entry point, once every import is done and the
# barrier file appears.
BARRIER = """
import os, sys, time
import turing.cli
from turing.cli import commands, demo, orchestrate, plan, sim, worker
import turing.store.db
try:
    import psycopg, psycopg_pool
except ImportError:
    pass
go = sys.argv[1]
open(go + "." + str(os.getpid()), "w").close()  # ready
deadline = time.time() + 90
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.0005)
turing.cli.main(sys.argv[2:])
"""


def _fresh(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'fresh.db'}"
    pg: PrivatePostgres = request.getfixturevalue("private_pg")
    return pg.create_database(f"race_{uuid.uuid4().hex[:10]}")


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_migrations_at_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    problems: list[str] = []
    versions: set[tuple[int, ...]] = set()
    rounds: list[tuple[str, list[subprocess.Popen[str]]]] = []
    try:
        for round_ in range(ROUNDS):  # all started (imports take the time), each on its own db
            folder = tmp_path / f"round-{round_}"
            folder.mkdir()
            url = _fresh(backend, folder, request)
            toml = f'[project]\ndatabase = "{url}"\nworkflows = []\n'
            (folder / "turing.toml").write_text(toml)
            racers = [
                subprocess.Popen(
                    [sys.executable, "-c", BARRIER, str(folder / "go"), "db", "upgrade"],
                    cwd=folder,
                    env=clean_env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(RACERS)
            ]
            rounds.append((url, racers))
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("round-*/go.*"))) < ROUNDS * RACERS:
            assert time.monotonic() < deadline, "the racers did not get ready within 60s"
            time.sleep(0.01)  # every racer imported and waiting
        for round_, (_, racers) in enumerate(rounds):  # then one pair at a time
            (tmp_path / f"round-{round_}" / "go").touch()
            for i, p in enumerate(racers):
                out, err = p.communicate(timeout=90)
                if p.returncode != 0 or "Traceback" in err or "error" in err.lower():
                    tail = " | ".join(err.strip().splitlines()[-3:])
                    problems.append(
                        f"round {round_} racer {i}: exit {p.returncode}: {tail or out.strip()}"
                    )
    finally:
        for _, racers in rounds:
            for p in racers:
                p.kill()
                p.wait(timeout=10)
    for round_, (url, _) in enumerate(rounds):
        db = connect(url)
        try:
            with db.read() as tx:
                applied = [
                    int(r["version"]) for r in tx.sql("SELECT version FROM turing_migrations")
                ]
                tasks = tx.sql("SELECT COUNT(*) AS n FROM turing_tasks")
        finally:
            db.close()
        if len(applied) != len(set(applied)) or not applied:
            problems.append(f"round {round_}: turing_migrations holds {sorted(applied)}")
        versions.add(tuple(sorted(applied)))
        assert tasks[0]["n"] == 0
    if len(versions) > 1:
        problems.append(f"rounds ended on different schema versions: {sorted(versions)}")
    assert not problems, f"{len(problems)} racer(s) failed:\n- " + "\n- ".join(problems)
