"""Retry policies: which failures are tried again, after how long, and when to stop."""

from __future__ import annotations

import random

import pytest

from turing import RetryPolicy
from turing.result import RunError

TRANSIENT = RunError("actor", "503", transient=True)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_s=2.0, max_delay_s=30.0, jitter=0.25)
    rng = random.Random(1)
    delays = [policy.delay(n, TRANSIENT, rng) for n in range(1, 10)]
    assert all(d is not None for d in delays)
    assert 1.5 <= delays[0] <= 2.5 and 3.0 <= delays[1] <= 5.0  # type: ignore[operator]
    assert max(d for d in delays if d is not None) <= 30.0


def test_retry_after_is_honoured() -> None:
    policy = RetryPolicy(backoff_s=1.0)
    error = RunError("actor", "429", transient=True, retry_after=42.0)
    assert policy.delay(1, error, random.Random()) == 42.0


def test_stops_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random()
    assert policy.delay(2, TRANSIENT, rng) is not None
    assert policy.delay(3, TRANSIENT, rng) is None


@pytest.mark.parametrize(
    "error",
    [
        RunError("actor", "model not found", transient=False),
        RunError("output_invalid", "still wrong after re-asks"),
        RunError("input_invalid", "bad input"),
        RunError("script_crash", "boom"),
        None,
    ],
)
def test_not_retried_by_default(error: RunError | None) -> None:
    assert RetryPolicy().delay(1, error, random.Random()) is None


def test_opt_in_kinds() -> None:
    policy = RetryPolicy(retry_on=frozenset({"script_crash"}))
    assert policy.delay(1, RunError("script_crash", "flaky"), random.Random()) is not None


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"backoff_s": -1}, {"jitter": 1.5}, {"max_delay_s": -2}]
)
def test_bad_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
