"""Issue 11, item 7, on SQLite and PostgreSQL: no fail-fast when the model host was down (52 s
and 104 attempts for 40 tasks). Now a circuit breaker per host stops calling it after a few
consecutive connection failures: the tasks stay pending (deferred, attempts not counted),
the run stops and says why, and once the host is back a probe closes the circuit and the
work is done. The host is a closed port on 127.0.0.1, later served by the simulator; the
breaker's clock is injected (counts of calls are asserted, never seconds)."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from integration.domain import add_items, rows, scalar, tag_items
from turing import Executor, Orchestrator, Registry
from turing.actors.base import ModelRequest, ModelResponse
from turing.actors.breaker import Breakers
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers.ollama import OllamaActor
from turing.store import Store

try:
    from turing.sim import SimConfig, Simulator
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"simulator not available: {exc}", allow_module_level=True)

pytestmark = pytest.mark.turing_allow_models  # a closed port, called on purpose

THRESHOLD = 3
CONCURRENCY = 2


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """The real Ollama provider, counting the calls that reach the network."""

    def __init__(self, inner: OllamaActor) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return await self.inner.complete(request)


class Tags:
    """The simulator's answer for `Tag item N: ...`: that item's tags."""

    def respond(self, model: str, messages: list[dict[str, Any]], schema: Any, rng: Any) -> Any:
        item = re.search(r"Tag item (\d+)", messages[-1]["content"])
        assert item is not None
        return {"item_id": int(item.group(1)), "tags": ["sim"]}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def no_sleep(_: float) -> None:
    return None


def test_an_unreachable_host_opens_the_circuit_tasks_stay_pending_and_come_back(
    domain: Store,
) -> None:
    add_items(domain, range(11, 41))  # 40 items, 40 tasks
    port = closed_port()
    clock = Clock()
    breakers = Breakers(threshold=THRESHOLD, cooldown_s=30, clock=clock)
    settings = ActorSettings.parse(
        "ollama:qwen2.5:7b", base_url=f"http://127.0.0.1:{port}", timeout=5, max_retries=3
    )
    host = Counting(OllamaActor(settings))
    actor = ManagedActor(host, settings, breaker=breakers.get(settings.url), sleep=no_sleep)
    orch = Orchestrator(
        Registry([tag_items()]), Executor({"m": actor}), domain, concurrency=CONCURRENCY
    )

    report = orch.process_pending_tasks()
    # few calls: the threshold, plus what was in flight when the circuit opened
    assert host.calls <= THRESHOLD + CONCURRENCY - 1
    assert report.failed == 0 and report.total("retrying") == 0
    assert report.deferred == report.processed >= 1
    assert report.stopped is not None
    assert f"circuit open for 127.0.0.1:{port}" in report.stopped
    assert "probing again after 30s" in report.stopped
    assert "40 task(s) left pending (attempts not counted)" in report.stopped
    tasks = rows(domain, "SELECT status, attempts, not_before FROM turing_tasks")
    assert len(tasks) == 40
    assert {(t["status"], t["attempts"]) for t in tasks} == {("pending", 0)}
    kinds = rows(domain, "SELECT DISTINCT error_kind FROM turing_runs")
    assert [k["error_kind"] for k in kinds] == ["circuit_open"]

    with Simulator(SimConfig.profile("fast"), responder=Tags(), port=port):
        # the host is back, but the cool-down is not over: still not called
        before = host.calls
        again = orch.process_pending_tasks()
        assert host.calls == before and again.stopped is not None
        assert again.failed == 0

        clock.now += 31  # the cool-down is over: one probe, it connects, the circuit closes
        done = orch.process_pending_tasks()
    assert done.stopped is None
    assert done.succeeded == 40 and done.failed == 0
    assert host.calls == before + 40
    assert breakers.get(settings.url).state == "closed"
    assert scalar(domain, "SELECT COUNT(DISTINCT item_id) FROM tags") == 40
    statuses = rows(domain, "SELECT status, attempts FROM turing_tasks")
    assert {(t["status"], t["attempts"]) for t in statuses} == {("succeeded", 1)}
