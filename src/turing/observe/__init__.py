"""Observing Turing at work: Prometheus metrics and OpenTelemetry traces.

`Observer` is the hook interface the executor and the processor call (no-op by default);
`Metrics` (extra `turing[metrics]`) and `Tracing` (extra `turing[otel]`) implement it and
import their library only when built. See docs/operations.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turing.observe.events import NOOP, Observer, Observers, combine

if TYPE_CHECKING:
    from turing.config import Observability
    from turing.observe.metrics import Metrics, MetricsServer, metrics_app
    from turing.observe.tracing import Tracing

__all__ = [
    "NOOP",
    "Metrics",
    "MetricsServer",
    "Observer",
    "Observers",
    "Tracing",
    "combine",
    "metrics_app",
    "tracing_from",
    "with_tracing",
]

_LAZY = {
    "Metrics": "turing.observe.metrics",
    "MetricsServer": "turing.observe.metrics",
    "metrics_app": "turing.observe.metrics",
    "Tracing": "turing.observe.tracing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'turing.observe' has no attribute {name!r}")


def with_tracing(observer: Observer | None, settings: Observability) -> Observer:
    """`observer` with the tracing `[observability]` asks for, unless it traces already
    (a `Tracing` given explicitly, on the application's own provider, wins)."""
    if observer is not None and observer.traces:
        return observer
    return combine(observer, tracing_from(settings))


def tracing_from(settings: Observability) -> Observer:
    """The tracer `[observability]` asks for: `tracing = "auto"` (the default) traces when
    the OpenTelemetry API is installed and does nothing otherwise; `true` requires it (a
    clear error naming the extra); `false` never traces."""
    if settings.tracing is False:
        return NOOP
    from turing.observe import tracing

    if settings.tracing == "auto" and not tracing.available():
        return NOOP
    return tracing.Tracing(capture_content=settings.capture_content)
