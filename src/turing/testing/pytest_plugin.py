"""The `turing` pytest plugin (entry point `pytest11`). See `turing.testing` for what each
fixture gives. Loading it imports only pytest and the standard library besides Turing's
core; PostgreSQL's driver and the simulator's server load when a test asks for them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from turing.testing import (
    ALLOW_ENV,
    ALLOW_MARKER,
    PG_DSN_ENV,
    SIM_MARKER,
    ModelGuard,
    TestDatabase,
    env_flag,
    guarded_factory,
    postgres_database,
    sqlite_database,
)

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("turing", "Turing (LLM workflows) test fixtures")
    group.addoption(
        "--turing-pg-dsn",
        default=None,
        help=f"PostgreSQL DSN for the turing_db fixture (default: ${PG_DSN_ENV}; "
        "neither: SQLite in tmp_path). Each test gets a fresh schema, dropped afterwards.",
    )
    group.addoption(
        "--turing-allow-models",
        action="store_true",
        default=False,
        help=f"Let every test call real model providers (default: blocked; ${ALLOW_ENV}=1 or "
        f"@pytest.mark.{ALLOW_MARKER} allow it too).",
    )
    parser.addini(
        "turing_allow_models",
        "Let tests call real model providers (the turing plugin blocks them by default).",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ALLOW_MARKER}: let this test call real model providers (the turing plugin's guard "
        "blocks them otherwise)",
    )
    config.addinivalue_line(
        "markers",
        f"{SIM_MARKER}(profile='fast', seed=None, responder=None, **config): configure the "
        "turing_sim fixture (a SimConfig profile, its fields, a Responder)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_CALL_REPORT] = report


def _allowed(request: pytest.FixtureRequest) -> str:
    """Why real model calls are allowed in this test ("" if they are not)."""
    config = request.config
    if request.node.get_closest_marker(ALLOW_MARKER) is not None:
        return f"@pytest.mark.{ALLOW_MARKER}"
    if config.getoption("--turing-allow-models", default=False):
        return "--turing-allow-models"
    if env_flag(ALLOW_ENV):
        return f"{ALLOW_ENV}=1"
    if config.getini("turing_allow_models"):
        return "ini turing_allow_models"
    return ""


@pytest.fixture(autouse=True)
def _turing_model_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelGuard]:
    """Block real model calls (at `turing.providers.create`, which builds every provider
    actor of a project) unless allowed; fail the test if one was blocked even when the code
    under test swallowed the error."""
    from turing import providers

    why = _allowed(request)
    guard = ModelGuard(allowed=bool(why), reason_to_allow=why, test=request.node.nodeid)
    if not guard.allowed:
        monkeypatch.setattr(providers, "create", guarded_factory(providers.create, guard))
    yield guard
    report = request.node.stash.get(_CALL_REPORT, None)
    if guard.blocked and report is not None and report.passed:
        pytest.fail(
            "real model call(s) were blocked by the turing pytest plugin during this test: "
            + "; ".join(guard.blocked)
            + f" (allow with @pytest.mark.{ALLOW_MARKER})",
            pytrace=False,
        )


@pytest.fixture
def turing_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestDatabase]:
    """A temporary project database; TURING_DATABASE names it during the test."""
    dsn = request.config.getoption("--turing-pg-dsn", default=None) or os.environ.get(PG_DSN_ENV)
    db = postgres_database(dsn) if dsn else sqlite_database(tmp_path)
    monkeypatch.setenv("TURING_DATABASE", db.url)
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def turing_fake_model() -> Callable[..., Any]:
    """`turing_fake_model(responses, name=..., delay=...)` -> a scripted `turing.FakeModel`:
    each call answers with the next response (a dict/list is sent as JSON, an exception is
    raised), or with `fn(request)` when given a function; `.requests` keeps every request."""
    from turing.actors.fake import FakeModel

    def make(responses: Any = (), **kwargs: Any) -> FakeModel:
        return FakeModel(responses, **kwargs)

    return make


@pytest.fixture
def turing_sim(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The LLM simulator on 127.0.0.1 (a free port), stopped at teardown: `.url` for
    Ollama, `.openai_url` for OpenAI-compatible clients, `.stats()`. Calls to it pass the
    model guard. Configure with `@pytest.mark.turing_sim(profile="chaos", seed=7)`."""
    from turing.errors import ConfigError
    from turing.sim import SimConfig, Simulator

    marker = request.node.get_closest_marker(SIM_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    profile = options.pop("profile", "fast")
    responder = options.pop("responder", None)
    try:
        sim = Simulator(SimConfig.profile(profile, **options), responder=responder).start()
    except ConfigError as exc:
        pytest.fail(f"turing_sim: {exc}", pytrace=False)
    try:
        yield sim
    finally:
        sim.stop()
