"""Test helpers for projects built on Turing, and the pytest plugin behind them.

Installing Turing registers a pytest plugin (entry point `pytest11`: `turing`) with these
fixtures:

- `turing_db`: a temporary project database, a `TestDatabase`. SQLite in `tmp_path` by
  default; a fresh PostgreSQL schema (dropped at teardown) when a DSN is given with
  `--turing-pg-dsn` or `TURING_TEST_PG_DSN`. `TURING_DATABASE` points at it during the test,
  so `Orchestrator.from_config()` and `Project.load()` use it.
- `turing_fake_model`: a factory of scripted `turing.FakeModel`s.
- `turing_sim`: the LLM simulator on 127.0.0.1 and a free port (needs `turing[sim]`),
  stopped at teardown; `@pytest.mark.turing_sim(profile="chaos", seed=7)` configures it.
- a guard (on for every test) that blocks calls to real model providers (Ollama, OpenAI,
  Anthropic through `turing.providers.create`, as every project actor is built) unless the
  call goes to a simulator running in the test process, or the test is marked
  `@pytest.mark.turing_allow_models`, or `--turing-allow-models` / `TURING_ALLOW_MODELS=1` /
  the ini option `turing_allow_models = true` is given.

`orchestrator()` builds an `Orchestrator` over given workflows and actors (fakes) and a
database URL, for tests that do not want a turing.toml.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from turing.actors.base import Actor, ModelRequest, ModelResponse
    from turing.actors.settings import ActorSettings
    from turing.orchestrator import Orchestrator
    from turing.project import Project
    from turing.store import Store
    from turing.workflow import Workflow

__all__ = [
    "ALLOW_ENV",
    "PG_DSN_ENV",
    "GuardedActor",
    "ModelCallBlocked",
    "ModelGuard",
    "TestDatabase",
    "orchestrator",
    "postgres_database",
    "sqlite_database",
]

PG_DSN_ENV = "TURING_TEST_PG_DSN"
ALLOW_ENV = "TURING_ALLOW_MODELS"
ALLOW_MARKER = "turing_allow_models"
SIM_MARKER = "turing_sim"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ModelCallBlocked(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """A real model call made during a test without permission: fails the test (it derives
    from pytest's failure, so `except Exception` in the code under test cannot hide it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)
        self.message = message


# --- the temporary project database ------------------------------------------------------


@dataclass
class TestDatabase:
    """One database for one test: `url` (what TURING_DATABASE is set to), `backend`
    ("sqlite" or "postgres"), and helpers to set up and inspect your own tables.

        turing_db.script("CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, text TEXT)")
        turing_db.execute("INSERT INTO tickets VALUES (:id, :text)", {"id": 1, "text": "hi"})
        assert turing_db.query("SELECT count(*) AS n FROM tickets") == [{"n": 1}]
    """

    __test__ = False  # not a test class, whatever its name

    url: str
    backend: str
    path: Path | None = None
    schema: str | None = None
    dsn: str | None = None
    _db: Any = field(default=None, repr=False)
    _stores: list[Store] = field(default_factory=list, repr=False)

    def _database(self) -> Any:
        if self._db is None:
            from turing.store.db import connect

            self._db = connect(self.url, pool_size=2)
        return self._db

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One statement with `:name` parameters, committed; the rows it returns, if any."""
        with self._database().tx() as tx:
            rows: list[dict[str, Any]] = tx.sql(sql, params)
            return rows

    def script(self, sql: str) -> None:
        """Several statements separated by `;` (no parameters), in one transaction."""
        with self._database().tx() as tx:
            tx.script(sql)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only query, as dicts."""
        with self._database().read() as tx:
            rows: list[dict[str, Any]] = tx.sql(sql, params)
            return rows

    def store(self) -> Store:
        """Turing's store on this database (queue, history); closed at teardown."""
        from turing.store import open_store

        store = open_store(self.url, pool_size=2)
        self._stores.append(store)
        return store

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._stores.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def drop(self) -> None:
        """Close, then drop the PostgreSQL schema (a SQLite file goes with tmp_path)."""
        self.close()
        if self.schema and self.dsn:
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def sqlite_database(folder: Path, name: str = "turing.db") -> TestDatabase:
    path = Path(folder) / name
    return TestDatabase(url=f"sqlite:///{path}", backend="sqlite", path=path)


def postgres_database(dsn: str) -> TestDatabase:
    """A fresh schema `turing_test_<random>` in the database `dsn` names (created on first
    use, dropped by `drop()`). Fails clearly when PostgreSQL cannot be reached."""
    try:
        import psycopg
    except ImportError:
        pytest.fail(
            f"a PostgreSQL DSN was given ({PG_DSN_ENV} or --turing-pg-dsn) but psycopg is not "
            "installed: pip install 'turing[postgres]'",
            pytrace=False,
        )
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL at {_redact(dsn)} ({PG_DSN_ENV} or --turing-pg-dsn) is unreachable: "
            f"{' '.join(str(exc).split())}",
            pytrace=False,
        )
    schema = f"turing_test_{uuid.uuid4().hex[:12]}"
    url = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    return TestDatabase(url=url, backend="postgres", schema=schema, dsn=dsn)


def _redact(dsn: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)


# --- building an orchestrator without a turing.toml ---------------------------------------


def orchestrator(
    workflows: Iterable[Workflow] | Project,
    *,
    database: str | TestDatabase,
    actors: Mapping[str, Actor] | None = None,
    **kwargs: Any,
) -> Orchestrator:
    """An `Orchestrator` on `database` for `workflows` (or a loaded `Project`), with step
    actor references answered by `actors` (e.g. `{"triage": FakeModel([...])}`). With a
    project, references not in `actors` resolve as the project configures them. Close it
    (`orch.close()`) at the end of the test."""
    from turing.executor import Executor
    from turing.orchestrator import Orchestrator
    from turing.project import Project
    from turing.registry import Registry
    from turing.store import open_store

    given = dict(actors or {})
    url = database.url if isinstance(database, TestDatabase) else database
    if isinstance(workflows, Project):
        project = workflows
        fallback = project.executor().resolve

        def resolve(ref: str) -> Actor:
            return given[ref] if ref in given else fallback(ref)

        executor = Executor(resolve, settings=project.settings())
        registry = project.registry
    else:
        executor = Executor(given)
        registry = Registry(list(workflows))
    return Orchestrator(registry, executor, open_store(url), **kwargs)


# --- the guard against real model calls --------------------------------------------------


@dataclass
class ModelGuard:
    """Blocks real provider calls unless allowed; remembers what it blocked."""

    allowed: bool = False
    reason_to_allow: str = ""
    test: str = ""
    blocked: list[str] = field(default_factory=list)

    def check(self, settings: ActorSettings) -> None:
        if self.allowed or _served_by_a_simulator(settings.url):
            return
        what = f"actor {settings.name!r} ({settings.provider}:{settings.model} at {settings.url})"
        self.blocked.append(what)
        raise ModelCallBlocked(
            f"real model call blocked by the turing pytest plugin: {what} in {self.test}. "
            "Tests must not call real models: give the step a turing.FakeModel (fixture "
            "turing_fake_model) or point the provider at the simulator (fixture turing_sim), "
            f"or allow it with @pytest.mark.{ALLOW_MARKER}, --turing-allow-models, "
            f"{ALLOW_ENV}=1 or the ini option turing_allow_models = true."
        )


class GuardedActor:
    """A provider actor whose calls the guard checks first; everything else is the actor's."""

    def __init__(self, inner: Actor, settings: ActorSettings, guard: ModelGuard) -> None:
        self.inner = inner
        self.settings = settings
        self.guard = guard

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.guard.check(self.settings)
        return await self.inner.complete(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"GuardedActor({self.inner!r})"


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "127.0.0.1"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return host, port


def _served_by_a_simulator(url: str) -> bool:
    """Whether `url` is a `turing.sim.Simulator` running in this process."""
    import sys

    runner = sys.modules.get("turing.sim.runner")
    if runner is None:
        return False
    target = _host_port(url)
    return any(
        _host_port(f"http://{sim.host}:{sim.port}") == target
        for sim in list(getattr(runner, "_running", ()))
    )


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def guarded_factory(original: Any, guard: ModelGuard) -> Any:
    """`turing.providers.create` with its provider actors wrapped in a `GuardedActor`
    (only Turing's own providers; a provider module a test registers is left alone)."""
    from turing import providers

    def create(settings: ActorSettings) -> Actor:
        actor = original(settings)
        module = providers.PROVIDERS.get(settings.provider, ("",))[0]
        if not module.startswith("turing.providers."):
            return actor  # type: ignore[no-any-return]
        return GuardedActor(actor, settings, guard)

    return create
