"""Budgets reserved before the money is spent.

A budget (tokens and/or cost) covers one processing run (`turing run --max-cost`, the
project's `[limits] batch_cost`) or a worker's whole life, and one run of a workflow
(`run_cost`, `run_tokens`). Before every model call the executor reserves the call's
quote (the prompt's tokens counted before the call, `max_tokens` for the answer, priced by
the actor); a call whose quote does not fit what is left is not made. After the call the
reservation is settled at what it really used. Counting only at the end let
`--max-cost 0.1` reach 0.2487 with eight calls in flight; now a budget can be exceeded only
by what calls in flight spend beyond their quotes (an answer longer than its estimate when
no `max_tokens` is set), at most one call per slot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from turing.actors.base import Usage


@dataclass(frozen=True)
class Reservation:
    tokens: int
    cost: float


class Budget:
    """What may still be spent; thread-safe (slots run on one loop, commits on threads)."""

    def __init__(self, tokens: int | None = None, cost: float | None = None) -> None:
        self.tokens = tokens
        self.cost = cost
        self.spent_tokens = 0
        self.spent_cost = 0.0
        self._held_tokens = 0
        self._held_cost = 0.0
        self.refused: str | None = None  # why a call was refused (the run stops claiming)
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.cost is None

    def reserve(self, quote: Usage) -> Reservation | None:
        """Hold `quote` if it fits what is left (spent and held counted); else None, and
        `refused` says why."""
        with self._lock:
            tokens = self.spent_tokens + self._held_tokens + quote.total_tokens
            cost = self.spent_cost + self._held_cost + quote.cost
            if self.tokens is not None and tokens > self.tokens:
                self.refused = self.refused or (
                    f"token budget: {self.spent_tokens} used, {self._held_tokens} held, the "
                    f"next call needs up to {quote.total_tokens} of {self.tokens}"
                )
                return None
            if self.cost is not None and cost > self.cost:
                self.refused = self.refused or (
                    f"cost budget: {self.spent_cost:.6f} spent, {self._held_cost:.6f} held, "
                    f"the next call may cost {quote.cost:.6f} of {self.cost:g}"
                )
                return None
            self._held_tokens += quote.total_tokens
            self._held_cost += quote.cost
            return Reservation(quote.total_tokens, quote.cost)

    def settle(self, held: Reservation, used: Usage) -> None:
        """Replace a reservation by what the call really used."""
        with self._lock:
            self._held_tokens -= held.tokens
            self._held_cost -= held.cost
            self.spent_tokens += used.total_tokens
            self.spent_cost += used.cost
