"""Prometheus metrics (`pip install 'turing[metrics]'`): what workers did, and the queue.

    metrics = Metrics()                              # its own CollectorRegistry
    orch = Orchestrator.from_config(observer=metrics)  # counts what the workers finish
    server = metrics.serve(9464)                     # /metrics on 127.0.0.1:9464 ...
    app = metrics.asgi()                             # ... or an ASGI app to mount

Counters and histograms are fed by `finished` (one call per completed task, after its
commit: nothing on a model call's path). The queue's depth, the review backlog and the
circuit breakers are read when scraped (`watch`), the queue's counts at most once per
`queue_ttl_s` however many scrapers ask. Labels are bounded: workflow, actor (its identity
without the server URL), outcome, kind, host, status; never a subject or a task id.

Each `Metrics` has its own registry unless given the application's, so two in one process
(tests, an app embedding Turing) never collide in the global default registry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from turing.errors import ConfigError
from turing.observe.events import Observer, actor_label

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from turing.actors.breaker import Breakers
    from turing.result import RunResult
    from turing.store.store import Store, TaskRow

log = logging.getLogger(__name__)

CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TASK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REVIEW = "review"  # the task status of outputs held for a human
CIRCUIT_STATES = ("closed", "half-open", "open")


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "Prometheus metrics need the prometheus_client package: pip install 'turing[metrics]'"
        ) from None
    return prometheus_client


class Metrics(Observer):
    """Turing's Prometheus metrics for one process (see the module docstring)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        queue_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        prom = _prometheus()
        self.registry: CollectorRegistry = registry or prom.CollectorRegistry()
        self._queue_ttl_s = queue_ttl_s
        self._clock = clock
        self._watched = False
        self._children: dict[tuple[Any, ...], Any] = {}
        r = self.registry
        counter, histogram = prom.Counter, prom.Histogram
        self.tasks = counter(
            "turing_tasks_finished", "Tasks completed, by outcome (succeeded, failed, retry, "
            "sink, lost, deferred, review).", ["workflow", "outcome"], registry=r,
        )  # fmt: skip
        self.task_seconds = histogram(
            "turing_task_duration_seconds", "Run time of a completed task (all its steps).",
            ["workflow"], buckets=TASK_BUCKETS, registry=r,
        )  # fmt: skip
        self.calls = counter(
            "turing_model_calls", "Model calls by actor and outcome (ok, error, cached: "
            "answered from the response cache).", ["actor", "outcome"], registry=r,
        )  # fmt: skip
        self.call_seconds = histogram(
            "turing_model_call_duration_seconds", "Latency of a model call (cached answers "
            "left out), provider retries included.", ["actor"], buckets=CALL_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.input_tokens = counter(
            "turing_model_input_tokens", "Prompt tokens sent, by actor.", ["actor"], registry=r
        )
        self.output_tokens = counter(
            "turing_model_output_tokens", "Answer tokens received, by actor.", ["actor"],
            registry=r,
        )  # fmt: skip
        self.cost = counter(
            "turing_model_cost", "Cost of model calls in the actor's price currency.",
            ["actor"], registry=r,
        )  # fmt: skip
        self.retries = counter(
            "turing_model_retries", "Transient call failures retried before an answer.",
            ["actor"], registry=r,
        )  # fmt: skip
        self.repairs = counter(
            "turing_repairs", "Deterministic repairs of model answers, by kind.",
            ["workflow", "kind"], registry=r,
        )  # fmt: skip
        self.reasks = counter(
            "turing_reasks", "Answers sent back to the model with their validation errors.",
            ["workflow"], registry=r,
        )  # fmt: skip
        self.leases_reclaimed = counter(
            "turing_leases_reclaimed", "Tasks taken back by a claim after their lease ran "
            "out (their worker stopped answering).", registry=r,
        )  # fmt: skip

    # ---------------------------------------------------------------- events
    def _of(self, metric: Any, *labels: str) -> Any:
        """The child of `metric` with `labels` (remembered: labels() costs a lock and checks)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def finished(self, task: TaskRow | None, result: RunResult, outcome: str) -> None:
        of, wf = self._of, result.workflow
        of(self.tasks, wf, str(outcome)).inc()
        of(self.task_seconds, wf).observe(result.duration_s)
        if result.reasks:
            of(self.reasks, wf).inc(result.reasks)
        for _, repair in result.repairs:
            of(self.repairs, wf, repair.kind).inc()
        for attempt in result.attempts:
            actor = actor_label(attempt.actor)
            usage = attempt.usage
            if usage.cached:
                of(self.calls, actor, "cached").inc(usage.cached)
                continue
            if not usage.calls:  # not called: refused before the call (store, circuit)
                continue
            failed = attempt.error is not None and not attempt.raw
            of(self.calls, actor, "error" if failed else "ok").inc(usage.calls)
            of(self.call_seconds, actor).observe(attempt.latency_s)
            if usage.input_tokens:
                of(self.input_tokens, actor).inc(usage.input_tokens)
            if usage.output_tokens:
                of(self.output_tokens, actor).inc(usage.output_tokens)
            if usage.cost:
                of(self.cost, actor).inc(usage.cost)
            if usage.retries:
                of(self.retries, actor).inc(usage.retries)

    def reclaimed(self, n: int) -> None:
        self.leases_reclaimed.inc(n)

    def watch(self, store: Store | None = None, breakers: Breakers | None = None) -> None:
        """Read the queue's counts (and the circuits) when scraped; once per `Metrics`."""
        if self._watched:
            return
        self._watched = True
        self.registry.register(_Scraped(store, breakers, self._queue_ttl_s, self._clock))

    # -------------------------------------------------------------- exposure
    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its content type."""
        prom = _prometheus()
        return prom.generate_latest(self.registry), str(prom.CONTENT_TYPE_LATEST)

    def asgi(self) -> Callable[..., Any]:
        """An ASGI app serving the metrics (mount it at /metrics)."""
        app: Callable[..., Any] = _prometheus().make_asgi_app(self.registry)
        return app

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve /metrics over HTTP from a daemon thread (port 0: any free port)."""
        server, thread = _prometheus().start_http_server(port, host, registry=self.registry)
        return MetricsServer(server, thread)


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `close()` stops it."""

    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def metrics_app(store: Store, registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """An ASGI app with the queue's metrics read from `store` (what the dashboard mounts
    at /metrics; the workers' own counters are scraped from each worker)."""
    metrics = Metrics(registry)
    metrics.watch(store)
    return metrics.asgi()


class _Scraped:
    """The metrics read at scrape time: queue depth and review backlog from the store
    (cached `ttl_s`, stale values kept if a read fails), and each circuit breaker."""

    def __init__(
        self,
        store: Store | None,
        breakers: Breakers | None,
        ttl_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.breakers = breakers
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}
        self._read_at: float | None = None
        self.reads = 0  # queries made (a test counts them)
        self.read_errors = 0

    def _queue(self) -> dict[str, dict[str, int]]:
        assert self.store is not None
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl_s:
                self._read_at = now
                self.reads += 1
                try:
                    self._counts = self.store.queue_counts()
                except Exception as exc:  # the database blinked: serve what we knew
                    self.read_errors += 1
                    log.warning("metrics: reading the queue's counts failed (%s)", exc)
            return self._counts

    def describe(self) -> Iterable[Metric]:
        return list(self._families({}))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self._queue() if self.store is not None else {}))

    def _families(self, counts: dict[str, dict[str, int]]) -> Iterator[Metric]:
        core = _prometheus().metrics_core
        if self.store is not None:
            depth = core.GaugeMetricFamily(
                "turing_queue_tasks", "Tasks in the queue by workflow and status.",
                labels=["workflow", "status"],
            )  # fmt: skip
            review = core.GaugeMetricFamily(
                "turing_review_backlog", "Tasks held for human review, by workflow.",
                labels=["workflow"],
            )  # fmt: skip
            for workflow, by_status in sorted(counts.items()):
                for status, n in sorted(by_status.items()):
                    depth.add_metric([workflow, status], n)
                review.add_metric([workflow], by_status.get(REVIEW, 0))
            errors = core.CounterMetricFamily(
                "turing_queue_read_errors", "Scrapes whose read of the queue's counts failed "
                "(the values before were served).",
            )  # fmt: skip
            errors.add_metric([], self.read_errors)
            yield from (depth, review, errors)
        if self.breakers is not None:
            state = core.GaugeMetricFamily(
                "turing_circuit_breaker_state", "1 for the state each model host's circuit "
                "is in (closed, half-open, open), 0 for the others.", labels=["host", "state"],
            )  # fmt: skip
            refused = core.CounterMetricFamily(
                "turing_circuit_breaker_refused", "Calls failed at once by an open circuit.",
                labels=["host"],
            )  # fmt: skip
            for breaker in self.breakers:
                now = breaker.state
                for name in CIRCUIT_STATES:
                    state.add_metric([breaker.key, name], 1.0 if name == now else 0.0)
                refused.add_metric([breaker.key], breaker.refused)
            yield from (state, refused)
