"""Shared helpers for the benchmark scripts: databases to run on and timing."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from turing import LLMStep, Workflow  # noqa: E402
from turing.checks import Check  # noqa: E402
from turing.store.db import Database, connect  # noqa: E402

PG_DSN = os.environ.get("TURING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


@contextmanager
def database(kind: str) -> Iterator[tuple[str, Database]]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            db = connect(url)
            try:
                yield url, db
            finally:
                db.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    url = f"{PG_DSN}?schema={schema}"
    db = connect(url)
    try:
        yield url, db
    finally:
        db.close()
        admin = connect(PG_DSN)
        with admin.tx() as tx:
            tx.sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def best_of(n: int, fn: Callable[[], object]) -> float:
    return min(timed(fn)[1] for _ in range(n))


def variant(workflow: Workflow, *, checks: list[Check] | None = None, **step: Any) -> Workflow:
    """`workflow` with its one LLM step changed (`actor=`, `grade=`, `max_reasks=` ...) and,
    when given, other checks: same name, version, contracts, source, sink and prompt."""
    [compiled] = workflow.steps
    assert isinstance(compiled.step, LLMStep)
    return Workflow(
        workflow.name,
        version=workflow.version,
        input=workflow.input,
        output=workflow.output,
        subject_key=workflow.subject_key,
        source=workflow.source,
        sink=workflow.sink,
        checks=workflow.checks if checks is None else checks,
        steps=[replace(compiled.step, **step)],
    )


def backends() -> list[str]:
    chosen = [a for a in sys.argv[1:] if a in ("sqlite", "postgres")]
    return chosen or ["sqlite", "postgres"]
