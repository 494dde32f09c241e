"""A circuit breaker per model host: stop calling a host that cannot be reached.

    closed ──(threshold consecutive connection failures)──> open
    open ──(cool-down over: the next call is let through as the one probe)──> half-open
    half-open ──(the probe reached the host)──> closed
    half-open ──(the probe could not connect)──> open (a new cool-down)

Only connection-level failures count (refused, reset, DNS, connect timeout: the
`connection` kind of `turing.providers._errors`); any answer from the host, an error status
or a read timeout included, shows that it is reachable and closes the circuit again. While
the circuit is open (and while a half-open probe is in flight) a call fails at once with
`ActorError(kind="circuit_open", transient=True)`, without touching the network; its
`retry_after` is the time left until the next probe. The processing layer defers such a
task (pending again, attempt not counted) and stops claiming (see `turing.queue.processor`).

One breaker per host key (`host:port` of the base URL), shared by every actor of one
process on that host (`Breakers`, held by `turing.project.ActorServices`). The clock is
injectable: tests count calls, they do not wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from turing.errors import ActorError

CIRCUIT_OPEN = "circuit_open"  # the ActorError kind of a call refused by an open circuit
DEFAULT_THRESHOLD = 3  # consecutive connection failures that open the circuit
DEFAULT_COOLDOWN_S = 30.0  # seconds before an open circuit lets one probe through
CONNECTION_KINDS = frozenset({"connection"})

Clock = Callable[[], float]


def host_key(url: str) -> str:
    """`host:port` of a base URL (the scheme's default port when none is given)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_connection_failure(exc: BaseException) -> bool:
    """A failure that says the host could not be reached at all."""
    return isinstance(exc, ActorError) and exc.kind in CONNECTION_KINDS


@dataclass(frozen=True)
class Probe:
    """Permission for one call; `probe` is True for the single half-open trial call."""

    probe: bool


class CircuitBreaker:
    """The circuit of one host (thread-safe: actors of several event loops may share it)."""

    def __init__(
        self,
        key: str,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        clock: Clock = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown_s < 0:
            raise ValueError("threshold must be >= 1 and cooldown_s >= 0")
        self.key = key
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0  # consecutive connection failures
        self._opened_at: float | None = None  # None: closed
        self._probing = False
        self.last_failure = ""
        self.calls = 0  # calls let through to the host
        self.refused = 0  # calls failed at once by the open circuit
        self.opened = 0  # times the circuit opened

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    @property
    def probing(self) -> bool:
        """A half-open probe is in flight (other calls wait for its outcome)."""
        with self._lock:
            return self._probing

    @property
    def is_open(self) -> bool:
        """Calls would be refused now (open, or half-open with its probe in flight)."""
        with self._lock:
            return self._opened_at is not None and (
                self._probing or self._clock() - self._opened_at < self.cooldown_s
            )

    def retry_in(self) -> float:
        """Seconds until the next probe may go (0 when closed or due)."""
        with self._lock:
            return self._retry_in()

    def _retry_in(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def enter(self) -> Probe:
        """Permission to call the host, or `ActorError(kind="circuit_open")` at once."""
        with self._lock:
            if self._opened_at is None:
                self.calls += 1
                return Probe(False)
            if not self._probing and self._clock() - self._opened_at >= self.cooldown_s:
                self._probing = True  # one probe at a time
                self.calls += 1
                return Probe(True)
            self.refused += 1
            wait = self._retry_in() if not self._probing else self.cooldown_s
            when = "a probe is in flight" if self._probing else f"probing again after {wait:.0f}s"
            raise ActorError(
                f"circuit open for {self.key}: {self._failures} consecutive connection "
                f"failures (last: {self.last_failure}); {when}",
                transient=True,
                retry_after=wait,
                kind=CIRCUIT_OPEN,
            )

    def reached(self, permit: Probe) -> None:
        """The call got an answer from the host (any answer, an error status included)."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            if permit.probe:
                self._probing = False

    def failed(self, permit: Probe, exc: BaseException) -> None:
        """The call ended with `exc`: a connection failure counts, anything else reached."""
        if not is_connection_failure(exc):
            self.reached(permit)
            return
        with self._lock:
            self._failures += 1
            self.last_failure = " ".join(str(exc).split())[:200]
            if permit.probe:
                self._probing = False
                self._opened_at = self._clock()  # a new cool-down
                self.opened += 1
            elif self._opened_at is None and self._failures >= self.threshold:
                self._opened_at = self._clock()
                self.opened += 1

    def abandoned(self, permit: Probe) -> None:
        """The call ended without saying anything about the host (cancelled, our database)."""
        if permit.probe:
            with self._lock:
                self._probing = False

    def describe(self) -> str:
        with self._lock:
            state = self._state()
            return (
                f"{self.key}: {state}, {self._failures} consecutive connection failure(s), "
                f"{self.calls} call(s) let through, {self.refused} refused"
            )


class Breakers:
    """The breakers of one process, one per host key, created on first use."""

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[str, CircuitBreaker] = {}

    def get(
        self, url: str, *, threshold: int | None = None, cooldown_s: float | None = None
    ) -> CircuitBreaker:
        """The breaker of `url`'s host (the first caller's settings make it)."""
        key = host_key(url)
        with self._lock:
            breaker = self._by_key.get(key)
            if breaker is None:
                breaker = self._by_key[key] = CircuitBreaker(
                    key,
                    threshold=threshold if threshold is not None else self.threshold,
                    cooldown_s=cooldown_s if cooldown_s is not None else self.cooldown_s,
                    clock=self.clock,
                )
            return breaker

    def __iter__(self) -> Iterator[CircuitBreaker]:
        with self._lock:
            return iter(list(self._by_key.values()))

    def open_ones(self) -> list[CircuitBreaker]:
        return [b for b in self if b.is_open]
