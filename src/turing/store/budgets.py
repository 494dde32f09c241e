"""The period budgets' rows (`turing_budget_periods`, `turing_budget_holds`): the statements
`turing.limits.spending.PeriodBudgets` runs, typed. The arithmetic (does a quote fit?) is
there; this module gives it one write transaction to decide and hold in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from turing.store.db import Database, Tx


@dataclass(frozen=True)
class Hold:
    """A reservation of `amount` on one budget's period, alive until `expires_at`."""

    permit: str
    key: str
    period_start: float
    amount: float
    holder: str
    expires_at: float


@dataclass(frozen=True)
class Spend:
    """What a settled call spent on one budget's period."""

    key: str
    period_start: float
    amount: float


class BudgetTx:
    """The reservation's statements inside one write transaction (`BudgetStore.tx()`)."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def lock(self, key: str, period_start: float, now: float) -> tuple[float, float]:
        """Create and lock the budget's period row (call in key order); its (spent, held),
        expired holds of the key deleted first."""
        self._tx.x("budget_ensure", key=key, period_start=period_start)
        row = self._tx.one("budget_lock", key=key, period_start=period_start)
        spent = float(row["spent"]) if row is not None else 0.0
        self._tx.x("budget_prune_holds", key=key, now=now)
        held = self._tx.one("budget_held", key=key, period_start=period_start, now=now)
        return spent, float(held["held"]) if held is not None else 0.0

    def hold(self, holds: Sequence[Hold]) -> None:
        self._tx.many(
            "budget_hold",
            [
                {
                    "permit": h.permit,
                    "key": h.key,
                    "period_start": h.period_start,
                    "amount": h.amount,
                    "holder": h.holder,
                    "expires_at": h.expires_at,
                }
                for h in holds
            ],
        )


class BudgetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def tx(self) -> Iterator[BudgetTx]:
        """One short write transaction: lock, check, hold."""
        with self.db.tx() as tx:
            yield BudgetTx(tx)

    def settle(self, permit: str, spends: Sequence[Spend]) -> None:
        """Add what the call really spent (even if its holds expired meanwhile: the money
        was spent) and drop the permit's holds. The period rows are updated first, in key
        order, as a reservation locks them: a reservation deleting this permit's expired
        holds while this waits for its row lock would otherwise deadlock with it."""
        with self.db.tx() as tx:
            for s in sorted(spends, key=lambda s: s.key):
                tx.x("budget_spend", key=s.key, period_start=s.period_start, amount=s.amount)
            tx.x("budget_release", permit=permit)

    def state(self, key: str, period_start: float, now: float) -> tuple[float, float]:
        """(spent, held) of one budget's period, read only."""
        with self.db.tx() as tx:
            row = tx.one("budget_state", key=key, period_start=period_start, now=now)
        return (float(row["spent"]), float(row["held"])) if row is not None else (0.0, 0.0)

    def release_holder(self, holder: str) -> int:
        """Delete every hold of a holder (a worker shutting down); how many."""
        with self.db.tx() as tx:
            return int(tx.x("budget_release_holder", holder=holder))
