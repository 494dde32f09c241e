"""Integration fixtures: the same suite on SQLite and on a real PostgreSQL.

`backend` is parametrized over `sqlite` (a temp file) and `postgres` (a fresh schema per
test in the database named by `TURING_TEST_PG_DSN`, dropped at teardown). Without a
reachable PostgreSQL the postgres half is skipped, unless `TURING_REQUIRE_PG=1`, which
turns that into a failure (CI sets it).

The domain is two tables, `items(item_id, text)` -> `results(item_id, words)` (plus
`tags` and `summaries` for the LLM and the dependent workflow), and the workflows are:

- `count_words`: one ScriptStep; source = items without a result; sink inserts a result.
- `tag_items`: one LLMStep answered by a `FakeModel` that answers with fenced JSON for
  even ids and a bare array for odd ones (so repair runs: strip_fences, wrap_array).
- `summarize`: a ScriptStep whose source reads `results`, i.e. another workflow's sink.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from integration.domain import DOMAIN_TABLES, Calls, add_items
from turing.store import Store, open_store

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def pg_dsn() -> str:
    return os.environ.get("TURING_TEST_PG_DSN", DEFAULT_PG_DSN)


_pg_problem: list[str | None] = []


def _pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if not _pg_problem:
        try:
            import psycopg
        except ImportError:
            _pg_problem.append("psycopg is not installed (pip install 'turing[postgres]')")
        else:
            try:
                with psycopg.connect(pg_dsn(), connect_timeout=3, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                _pg_problem.append(None)
            except psycopg.Error as exc:
                _pg_problem.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    return _pg_problem[0]


def _with_schema(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"


@dataclass
class Backend:
    """One database for one test; `url()` names it (or a further, separate one)."""

    name: str
    tmp: Path
    _schemas: list[str] = field(default_factory=list)
    _urls: dict[str, str] = field(default_factory=dict)

    def url(self, which: str = "main") -> str:
        if which not in self._urls:
            if self.name == "sqlite":
                self._urls[which] = f"sqlite:///{self.tmp / f'{which}.db'}"
            else:
                schema = f"t_{uuid.uuid4().hex[:12]}"
                self._schemas.append(schema)
                self._urls[which] = _with_schema(pg_dsn(), schema)
        return self._urls[which]

    def store(self, which: str = "main") -> Store:
        return open_store(self.url(which))

    def drop(self) -> None:
        if not self._schemas:
            return
        import psycopg

        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres":
        problem = _pg_unreachable()
        if problem is not None:
            message = f"PostgreSQL at {pg_dsn()} (TURING_TEST_PG_DSN) is unreachable: {problem}"
            if os.environ.get("TURING_REQUIRE_PG") == "1":
                pytest.fail(f"{message} (TURING_REQUIRE_PG=1)", pytrace=False)
            pytest.skip(message)
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.drop()


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.store()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def stores(backend: Backend) -> Iterator[Callable[[], Store]]:
    """Open any number of stores on the test database (a worker each); closed at the end."""
    opened: list[Store] = []

    def make() -> Store:
        s = backend.store()
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def domain(store: Store) -> Store:
    """The store with the domain tables and items 1..10 (item i has i words)."""
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, range(1, 11))
    return store


@pytest.fixture
def calls() -> Calls:
    return Calls()
