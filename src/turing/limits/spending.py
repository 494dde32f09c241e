"""Period budgets enforced through the database, shared by every worker: reserve, then settle.

Before a model call, its quote (the most it may spend: prompt tokens, `max_tokens` for the
answer, priced) is reserved against every budget the call spends from (global, its workflow,
its actor), all or nothing, in one short write transaction that locks each budget's period
row: a call is made only if spent + held + quote fits every limit. After the call the hold is
replaced by what the call really spent. So the fleet together never goes over a period's
budget by more than what calls in flight spend beyond their quotes.

A hold carries its holder (the worker) and an expiry (`hold_s`): a worker that crashed
between reserving and settling leaks nothing for longer than that. A call that outlives its
hold is still counted in full when it settles.

A refusal is not a failure: the caller defers the task (`ErrorKind.BUDGET_WAIT`) until the
period's end when what was already spent leaves no room, or for `recheck_s` when holds of
calls in flight fill it (they may settle lower). A quote larger than a whole budget is
different: no period will ever have room, so `BudgetTooSmall` fails the task and says why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from turing.actors.base import ModelResponse, Usage
from turing.errors import ActorError
from turing.limits.periods import PeriodBudget
from turing.store.budgets import BudgetStore, Hold, Spend
from turing.store.db import Database

BUDGET_WAIT = "budget_wait"  # the ActorError kind of a call a period budget had no room for
DEFAULT_HOLD_S = 900.0
DEFAULT_RECHECK_S = 30.0


class BudgetTooSmall(ActorError):
    """A call's quote exceeds a whole period budget: it could never be made (the task
    fails, with this message, instead of waiting period after period)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="budget")


def amount_of(budget: PeriodBudget, usage: Usage) -> float:
    """What `usage` spends of `budget`: its cost in USD, or its tokens."""
    return usage.cost if budget.unit == "USD" else float(usage.total_tokens)


@dataclass(frozen=True)
class Held:
    """A granted reservation: the permit and, per budget, its period start and amount."""

    permit: str
    parts: tuple[tuple[PeriodBudget, float, float], ...]


@dataclass(frozen=True)
class Refusal:
    """Why a quote did not fit, and until when to wait (epoch seconds, the budgets' clock)."""

    budget: PeriodBudget
    period_start: float
    spent: float
    held: float
    needed: float
    until: float

    @property
    def message(self) -> str:
        unit = self.budget.unit
        since = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.period_start))
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.until))
        return (
            f"budget {self.budget} (this {self.budget.period} since {since} UTC): "
            f"{self.spent:.6g} {unit} spent, {self.held:.6g} held by calls in flight, the next "
            f"call may need {self.needed:.6g}; waiting until {until} UTC"
        )


@dataclass(frozen=True)
class BudgetState:
    """One budget in its current period (for `turing stats`)."""

    budget: PeriodBudget
    period_start: float
    period_end: float
    spent: float
    held: float

    def as_dict(self) -> dict[str, object]:
        return {
            "scope": self.budget.scope,
            "limit": self.budget.amount,
            "unit": self.budget.unit,
            "period": self.budget.period,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "spent": self.spent,
            "held": self.held,
            "left": max(0.0, self.budget.amount - self.spent - self.held),
        }


class PeriodBudgets:
    """The configured period budgets over one database, for one holder (the worker id)."""

    def __init__(
        self,
        db: Database,
        budgets: Sequence[PeriodBudget],
        *,
        holder: str,
        hold_s: float = DEFAULT_HOLD_S,
        recheck_s: float = DEFAULT_RECHECK_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = BudgetStore(db)
        self.budgets = tuple(budgets)
        self.holder = holder
        self.hold_s = hold_s
        self.recheck_s = recheck_s
        self.clock = clock

    def for_call(self, *, workflow: str | None, actor: str | None) -> list[PeriodBudget]:
        scopes = {"global", f"workflow:{workflow}", f"actor:{actor}"}
        return sorted((b for b in self.budgets if b.scope in scopes), key=lambda b: b.key)

    def reserve(self, budgets: Sequence[PeriodBudget], quote: Usage) -> Held | Refusal:
        """Hold `quote` on every budget at once, or on none (the first that has no room)."""
        now = self.clock()
        permit = uuid.uuid4().hex
        parts: list[tuple[PeriodBudget, float, float]] = []
        with self._store.tx() as tx:
            for budget in sorted(budgets, key=lambda b: b.key):  # lock order: no deadlock
                start, end = budget.bounds(now)
                spent, held = tx.lock(budget.key, start, now)
                needed = amount_of(budget, quote)
                limit = budget.amount * (1 + 1e-9)  # 0.1 + 0.2 > 0.3 in floating point
                if needed > limit:  # no period will ever have room: say so, do not wait
                    raise BudgetTooSmall(
                        f"budget {budget}: one call may need {needed:.6g} {budget.unit} "
                        "(its quote: prompt tokens and max_tokens, priced), more than the "
                        "whole budget; raise the budget or lower the step's max_tokens"
                    )
                if spent + held + needed > limit:
                    alone = spent + needed > limit  # only the next period has room
                    until = end if alone else min(end, now + self.recheck_s)
                    return Refusal(budget, start, spent, held, needed, until)
                parts.append((budget, start, needed))
            tx.hold([
                Hold(permit, b.key, start, amount, self.holder, now + self.hold_s)
                for b, start, amount in parts
            ])  # fmt: skip
        return Held(permit, tuple(parts))

    def settle(self, held: Held, used: Usage) -> None:
        """Replace the holds by what the call really spent (nothing for a failed call)."""
        self._store.settle(
            held.permit,
            [Spend(b.key, start, amount_of(b, used)) for b, start, _ in held.parts],
        )

    async def spend(
        self,
        *,
        workflow: str | None,
        actor: str | None,
        quote: Usage,
        call: Callable[[], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Make `call` under the budgets of its workflow and actor: reserve the quote, call,
        settle at the answer's usage. No room: `ActorError(kind=BUDGET_WAIT)` with
        `retry_after` the seconds to wait (the task is deferred, not failed)."""
        budgets = self.for_call(workflow=workflow, actor=actor)
        if not budgets:
            return await call()
        got = await asyncio.to_thread(self.reserve, budgets, quote)
        if isinstance(got, Refusal):
            raise ActorError(
                got.message,
                transient=True,
                retry_after=max(0.0, got.until - self.clock()),
                kind=BUDGET_WAIT,
            )
        used = Usage()
        try:
            response = await call()
            used = response.usage
            return response
        finally:
            await asyncio.shield(asyncio.to_thread(self.settle, got, used))

    def states(self) -> list[BudgetState]:
        """Every budget in its current period: spent and held now."""
        now = self.clock()
        out = []
        for budget in self.budgets:
            start, end = budget.bounds(now)
            spent, held = self._store.state(budget.key, start, now)
            out.append(BudgetState(budget, start, end, spent, held))
        return out

    def release_all(self) -> int:
        """Drop this holder's holds (a worker shutting down with nothing in flight)."""
        return self._store.release_holder(self.holder)
