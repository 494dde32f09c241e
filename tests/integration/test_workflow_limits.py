"""Limits declared on a workflow (`Workflow(limits=...)`), on both backends, through a real
project: two orchestrators loaded from one turing.toml never have more of the workflow's calls
in flight than it declares (although turing.toml declares no limits at all), and where
turing.toml and the workflow both limit a rate the stricter one holds."""

from __future__ import annotations

import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import Backend
from integration.domain import DOMAIN_TABLES, add_items, rows
from integration.test_limits_in_runs import Gauge, GaugedModel
from turing import Orchestrator, Project
from turing.actors.settings import ActorSettings
from turing.limits.limiter import Permit
from turing.providers import PROVIDERS
from turing.store import Store


@pytest.fixture
def gauge() -> Iterator[Gauge]:
    """A provider `gaugeprov` whose models all report to one Gauge."""
    found = Gauge(fill=2)  # calls wait until two are in flight: a limit of 2 is reached
    module = types.ModuleType("_turing_test_gaugeprov")

    def create(settings: ActorSettings) -> GaugedModel:
        return GaugedModel(found)

    module.create = create  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    PROVIDERS["gaugeprov"] = (module.__name__, "gaugeprov")
    yield found
    PROVIDERS.pop("gaugeprov")
    sys.modules.pop(module.__name__)


def make_project(tmp_path: Path, backend: Backend, limits: dict[str, Any], toml: str = "") -> Path:
    (tmp_path / "flows.py").write_text(
        f"from integration.domain import tag_items\nWORKFLOWS = [tag_items(limits={limits!r})]\n"
    )
    config = tmp_path / "turing.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [project]
            database = "{backend.url()}"
            workflows = ["flows"]
            [actors.m]
            spec = "gaugeprov:m"
            max_retries = 0
            """
        )
        + textwrap.dedent(toml)
    )
    return config


def domain(store: Store) -> None:
    with store.db.tx() as tx:
        for ddl in DOMAIN_TABLES:
            tx.sql(ddl)
    add_items(store, range(1, 11))


def test_a_workflows_concurrency_limit_holds_across_two_orchestrators(
    tmp_path: Path, backend: Backend, gauge: Gauge
) -> None:
    config = make_project(tmp_path, backend, {"concurrency": 2})
    workers = [Orchestrator.from_config(config, concurrency=8) for _ in range(2)]
    assert all(w.limiter is not None for w in workers)  # made for the workflow's limit alone
    domain(workers[0].store)
    workers[0].discover_pending_tasks()
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda w=w: reports.append(w.process_pending_tasks(discover=False)))
        for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store = workers[0].store
    try:
        assert sum(r.succeeded for r in reports) == 10
        assert gauge.peak == 2  # 16 tasks in flight, never more than 2 calls
        slots = rows(store, "SELECT key FROM turing_limit_slots")
        assert slots == []  # every slot given back
        keys = {r["key"] for r in rows(store, "SELECT key FROM turing_limits")}
        assert keys == {"workflow:tag_items|concurrency"}
    finally:
        for w in workers:
            w.close()


@pytest.mark.parametrize("where", ["workflow", "toml"])
def test_the_stricter_rate_of_workflow_and_turing_toml_holds(
    tmp_path: Path, backend: Backend, gauge: Gauge, where: str
) -> None:
    """4/s against 100/s over the same window: whichever side declares 4/s, 4/s holds."""
    workflow_rate, toml_rate = ("4/s", "100/s") if where == "workflow" else ("100/s", "4/s")
    config = make_project(
        tmp_path,
        backend,
        {"rate": workflow_rate},
        f'[limits.rate]\n"workflow:tag_items" = "{toml_rate}"\n',
    )
    project = Project.load(config)
    in_force = project.limits.keys()
    assert [str(k) for k in in_force] == ["workflow:tag_items 4/s"]
    orch = Orchestrator.from_project(project, concurrency=8)
    granted: list[float] = []
    limiter = orch.limiter
    real = limiter.try_acquire

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if isinstance(result, Permit):
            granted.append(result.granted_at)
        return result

    limiter.try_acquire = recording
    try:
        domain(orch.store)
        report = orch.process_pending_tasks()
    finally:
        orch.close()
    assert report.succeeded == 10 and len(granted) == 10
    granted.sort()  # the limiter's own grant times: exact windows, whatever the machine load
    assert max(sum(1 for t in granted if s <= t < s + 1.0) for s in granted) <= 4
    assert granted[-1] - granted[0] >= 2.0  # 10 calls at 4/s need three windows


def test_limits_hold_for_actors_a_workflow_module_offers(tmp_path: Path, backend: Backend) -> None:
    """Issue 11 (10): an actor offered by a module's `ACTORS` ignored the shared limits (a
    fake model ran 30 of 30 calls at once under a limit of 4). Now it is under them too."""
    (tmp_path / "offered_flows.py").write_text(
        textwrap.dedent(
            """
            from integration.domain import tag_items
            from integration.test_limits_in_runs import Gauge, GaugedModel

            GAUGE = Gauge(fill=3)
            WORKFLOWS = [tag_items()]
            ACTORS = {"offered:gauge": GaugedModel(GAUGE)}
            """
        )
    )
    config = tmp_path / "turing.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [project]
            database = "{backend.url()}"
            workflows = ["offered_flows"]
            [actors]
            m = "offered:gauge"
            [limits.concurrency]
            "actor:m" = 3
            """
        )
    )
    project = Project.load(config)
    orch = Orchestrator.from_project(project, concurrency=10)
    try:
        domain(orch.store)
        report = orch.process_pending_tasks()
    finally:
        orch.close()
    gauge = sys.modules["offered_flows"].GAUGE
    assert report.succeeded == 10
    assert gauge.peak == 3  # reached (the gauge waits for it), never exceeded
