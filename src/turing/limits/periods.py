"""Budgets per calendar period: `"5 USD/day"`, `"2000000 tokens/month"` on a scope.

A period budget differs from a rate limit: it is not a sliding window but a UTC calendar
period (the hour, the day, the ISO week starting Monday, the month) that starts afresh at
its boundary, which is how invoices and spending caps are counted.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from turing.limits.spec import LimitSpecError, parse_scope

BudgetUnit = Literal["USD", "tokens"]
Period = Literal["hour", "day", "week", "month"]

_UNITS: dict[str, BudgetUnit] = {
    **dict.fromkeys(("usd", "$", "dollar", "dollars"), "USD"),
    **dict.fromkeys(("token", "tokens"), "tokens"),
}
_PERIODS: dict[str, Period] = {
    **dict.fromkeys(("h", "hr", "hour", "hourly"), "hour"),
    **dict.fromkeys(("d", "day", "daily"), "day"),
    **dict.fromkeys(("w", "wk", "week", "weekly"), "week"),
    **dict.fromkeys(("mo", "month", "monthly"), "month"),
}
_SPEC = re.compile(
    r"^\s*(?P<amount>\d[\d_]*(?:\.\d+)?)\s*(?P<unit>[a-z$]+)\s*/\s*(?P<period>[a-z]+)\s*$",
    re.IGNORECASE,
)
_EXAMPLES = '"5 USD/day", "50 USD/month" or "2000000 tokens/day"'


@dataclass(frozen=True)
class PeriodBudget:
    """At most `amount` USD (or tokens) spent on `scope` per calendar `period` (UTC)."""

    scope: str
    amount: float
    unit: BudgetUnit
    period: Period

    @property
    def key(self) -> str:
        """The budget's record in the database: the amount is left out, so a changed
        amount applies at once to what the period already spent."""
        return f"{self.scope}|{self.unit}/{self.period}"

    @property
    def spec(self) -> str:
        return f"{self.amount:.12g} {self.unit}/{self.period}"

    def __str__(self) -> str:
        return f"{self.scope} {self.spec}"

    def bounds(self, now: float) -> tuple[float, float]:
        return period_bounds(self.period, now)


def parse_budget(scope: str, spec: str) -> PeriodBudget:
    """`parse_budget("actor:gpt", "50 USD/month")`; `LimitSpecError` naming what is wrong."""
    key = parse_scope(scope)
    if not isinstance(spec, str):
        raise LimitSpecError(f"budget {spec!r}: expected text such as {_EXAMPLES}")
    m = _SPEC.match(spec)
    if m is None:
        raise LimitSpecError(f"invalid budget {spec!r}: expected {_EXAMPLES}")
    unit = _UNITS.get(m["unit"].lower())
    if unit is None:
        raise LimitSpecError(f"invalid budget {spec!r}: unknown unit {m['unit']!r} (USD or tokens)")
    period = _PERIODS.get(m["period"].lower())
    if period is None:
        raise LimitSpecError(
            f"invalid budget {spec!r}: unknown period {m['period']!r} (hour, day, week or month)"
        )
    amount = float(m["amount"].replace("_", ""))
    if amount <= 0:
        raise LimitSpecError(f"invalid budget {spec!r}: the amount must be positive")
    return PeriodBudget(key, amount, unit, period)


def period_bounds(period: Period, now: float) -> tuple[float, float]:
    """The UTC calendar period holding `now`: (start, end) as epoch seconds, end exclusive."""
    at = datetime.fromtimestamp(now, UTC)
    if period == "hour":
        start = at.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif period == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif period == "week":
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(start.year, start.month)[1]
        end = start + timedelta(days=days)
    return start.timestamp(), end.timestamp()
