"""Acceptance tests run the real `turing` CLI as a subprocess in throwaway projects."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from turing.store.db import connect

PG_DSN = os.environ.get("TURING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Ran:
    code: int
    out: str
    err: str


Runner = Callable[..., Ran]


@pytest.fixture
def turing(tmp_path: Path) -> Runner:
    """Run `python -m turing ARGS` in `cwd` (default: tmp_path) with a clean TURING_* env."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
    ) -> Ran:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
        env = {**base, "COLUMNS": "200", **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "turing", *args],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        return Ran(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a project with `turing.toml` and a `flows.py` module; return its folder."""

    def make(module: str, actors: str = "") -> Path:
        (tmp_path / "flows.py").write_text(textwrap.dedent(module))
        (tmp_path / "turing.toml").write_text(
            '[project]\nworkflows = ["flows"]\n\n[actors]\n' + textwrap.dedent(actors)
        )
        return tmp_path

    return make


def _pg_available() -> bool:
    try:
        connect(PG_DSN).close()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def scratch_database(backend: str, folder: Path, statements: list[str]) -> Iterator[str]:
    """A database URL for one test: a SQLite file in `folder`, or a fresh PostgreSQL schema
    (dropped afterwards; skipped without PostgreSQL unless TURING_REQUIRE_PG=1), with
    `statements` run first."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'items.db'}"
    else:
        if not _pg_available():
            if os.environ.get("TURING_REQUIRE_PG") == "1":
                pytest.fail(
                    f"PostgreSQL required (TURING_REQUIRE_PG=1) but not reachable at {PG_DSN}"
                )
            pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
        schema = f"t_{uuid.uuid4().hex[:10]}"
        url = f"{PG_DSN}?schema={schema}"
    db = connect(url)
    with db.tx() as tx:
        for statement in statements:
            tx.sql(statement)
    db.close()
    try:
        yield url
    finally:
        if schema:
            db = connect(PG_DSN)
            with db.tx() as tx:
                tx.sql(f"DROP SCHEMA {schema} CASCADE")
            db.close()


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of a query on a test database (its own connection, closed after)."""
    db = connect(url)
    try:
        with db.read() as tx:
            return tx.sql(sql)
    finally:
        db.close()


def start_turing(folder: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m turing ARGS` in `folder`, running in the background (no TURING_* env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
    return subprocess.Popen(
        [sys.executable, "-m", "turing", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
