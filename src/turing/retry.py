"""Retry policies: when a failed run is tried again, and how long to wait first.

A workflow's policy decides for its tasks: a run that failed with a retryable error is put
back in the queue with `not_before` set (persisted, so a restart keeps the schedule) until
`max_attempts` runs were made; then the task fails for good (the dead letter) and waits for
`turing retry`. Transient model errors are first retried in-process by the managed actor;
this policy is the longer-term net for outages that outlast those few seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from turing.result import RunError

# Error kinds worth another try by default: transient model errors and our own database
# trouble. The rest (bad input, invalid output after re-asks, a broken template, a budget,
# a crashing script) would most likely fail again the same way; opt in with `retry_on`.
RETRYABLE = frozenset({"actor", "internal"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_s: float = 5.0
    max_delay_s: float = 600.0
    jitter: float = 0.25
    retry_on: frozenset[str] = field(default=RETRYABLE)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_s < 0 or self.max_delay_s < 0 or not 0 <= self.jitter < 1:
            raise ValueError("backoff_s and max_delay_s must be >= 0, jitter in [0, 1)")

    def delay(self, attempts: int, error: RunError | None, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None when the task should fail now.

        `attempts` is how many runs were made, this one included.
        """
        if error is None or attempts >= self.max_attempts or error.kind not in self.retry_on:
            return None
        if error.kind == "actor" and not error.transient:
            return None  # e.g. model not found, bad key: waiting will not help
        base = min(self.backoff_s * 2.0 ** (attempts - 1), self.max_delay_s)
        wait = base * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return float(min(wait, self.max_delay_s))


NO_RETRY = RetryPolicy(max_attempts=1)
