"""Chaos-tier fixtures: a private PostgreSQL instance (started and always stopped here), the
LLM simulator, and per-test projects and fleets whose processes are all killed at the end."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acceptance.conftest import Runner, turing
from chaos.harness import ChaosProject, Fleet, PrivatePostgres, pg_binary, sim_config
from turing.sim import Simulator

MakeProject = Callable[..., ChaosProject]
__all__ = ["turing"]  # the acceptance tier's CLI runner, a fixture here too


def pytest_configure(config: pytest.Config) -> None:
    # --strict-markers: register the marker here too, in case pyproject.toml does not (yet)
    config.addinivalue_line("markers", "chaos: real processes under faults (tests/chaos)")


def _no_postgres(reason: str) -> None:
    if os.environ.get("TURING_REQUIRE_PG") == "1":
        pytest.fail(f"PostgreSQL required (TURING_REQUIRE_PG=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of our own (initdb + pg_ctl in a temp dir on a free port), so
    scenarios may restart or stop it; skipped without initdb unless TURING_REQUIRE_PG=1."""
    if pg_binary("initdb") is None or pg_binary("pg_ctl") is None:
        _no_postgres("initdb/pg_ctl not found: cannot start a private PostgreSQL instance")
    try:
        instance = PrivatePostgres()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _no_postgres(f"cannot start a private PostgreSQL instance: {exc}")
        raise
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="session")
def chaos_sim() -> Iterator[Simulator]:
    with Simulator(sim_config()) as sim:
        yield sim


@pytest.fixture
def make_project(
    request: pytest.FixtureRequest, tmp_path: Path, chaos_sim: Simulator, turing: Runner
) -> Iterator[MakeProject]:
    """`make_project(backend, items, **flow_env)`: a fresh database (a SQLite file, or a new
    database on the private instance, dropped afterwards) with the domain tables and `items`
    subjects."""
    databases: list[tuple[PrivatePostgres, str]] = []

    def make(backend: str, items: int, **flow_env: str) -> ChaosProject:
        folder = tmp_path / f"project-{uuid.uuid4().hex[:6]}"
        if backend == "sqlite":
            folder.mkdir()
            url = f"sqlite:///{folder / 'chaos.db'}"
        else:
            pg: PrivatePostgres = request.getfixturevalue("private_pg")
            name = f"chaos_{uuid.uuid4().hex[:10]}"
            url = pg.create_database(name)
            databases.append((pg, name))
        return ChaosProject.create(
            folder, url, backend, sim_url=chaos_sim.url, items=items, runner=turing, **flow_env
        )

    yield make
    for pg, name in databases:
        with contextlib.suppress(Exception):  # a scenario may have left the server stopped
            pg.drop_database(name)


@pytest.fixture
def fleets(make_project: MakeProject) -> Iterator[Callable[[ChaosProject], Fleet]]:
    """`fleets(project)` -> a Fleet; every process it started is killed at teardown (before
    the project's database is dropped)."""
    made: list[Fleet] = []

    def make(project: ChaosProject, seed: int = 0) -> Fleet:
        fleet = Fleet(project, seed=seed)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()
