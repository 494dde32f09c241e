"""Period budgets: specs, UTC calendar boundaries, and the reserve/settle arithmetic on a
real SQLite file with an injected clock (no test waits for a period to pass)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from turing.actors.base import Usage
from turing.config import Config
from turing.limits import LimitsConfig, LimitSpecError
from turing.limits.periods import parse_budget, period_bounds
from turing.limits.spending import BudgetTooSmall, Held, PeriodBudgets, Refusal
from turing.store import open_store


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_specs_parse_with_units_and_periods() -> None:
    b = parse_budget("workflow:job_skills", "5 USD/day")
    assert (b.scope, b.amount, b.unit, b.period) == ("workflow:job_skills", 5.0, "USD", "day")
    assert b.key == "workflow:job_skills|USD/day"
    t = parse_budget("actor:gpt", "2_000_000 tokens/month")
    assert (t.amount, t.unit, t.period) == (2_000_000, "tokens", "month")
    assert parse_budget("global", "0.25 usd/hour").spec == "0.25 USD/hour"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("5/day", "expected"),
        ("5 EUR/day", "unknown unit 'EUR'"),
        ("5 USD/year", "unknown period 'year'"),
        ("0 USD/day", "positive"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(LimitSpecError, match=says):
        parse_budget("global", spec)


def test_config_names_the_bad_key_and_refuses_two_of_one_kind() -> None:
    ok = LimitsConfig(budget={"actor:gpt": ["50 USD/month", "2000000 tokens/day"]})
    assert [b.spec for b in ok.budgets()] == ["50 USD/month", "2000000 tokens/day"]
    with pytest.raises(ValueError, match=r"'actor:gpt'.*unknown unit"):
        LimitsConfig(budget={"actor:gpt": "5 EUR/day"})
    with pytest.raises(ValueError, match="same unit over the same period"):
        LimitsConfig(budget={"global": ["5 USD/day", "7 USD/day"]})
    with pytest.raises(ValueError, match="unknown limit scope"):
        LimitsConfig(budget={"model:gpt": "5 USD/day"})
    cfg = Config.model_validate({"limits": {"budget": {"workflow:a": "1 USD/week"}}})
    assert cfg.limits.budgets_for(workflow="a", actor="x")[0].spec == "1 USD/week"
    assert cfg.limits.budgets_for(workflow="b", actor="x") == []


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("hour", "2026-03-01T10:59:59.999", "2026-03-01T10:00", "2026-03-01T11:00"),
        ("day", "2026-03-01T00:00:00", "2026-03-01T00:00", "2026-03-02T00:00"),
        ("day", "2026-02-28T23:59:59.999", "2026-02-28T00:00", "2026-03-01T00:00"),
        ("week", "2026-03-01T12:00", "2026-02-23T00:00", "2026-03-02T00:00"),  # a Sunday
        ("week", "2026-03-02T00:00", "2026-03-02T00:00", "2026-03-09T00:00"),  # a Monday
        ("month", "2028-02-29T23:00", "2028-02-01T00:00", "2028-03-01T00:00"),  # leap year
        ("month", "2026-12-31T23:59:59", "2026-12-01T00:00", "2027-01-01T00:00"),
    ],
)
def test_periods_are_utc_calendar_periods(period: str, at: str, start: str, end: str) -> None:
    assert period_bounds(period, ts(at)) == (ts(start), ts(end))  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'b.db'}"


def budgets(url: str, specs: dict[str, str], clock: Clock, holder: str = "w1", **kw: float):  # type: ignore[no-untyped-def]
    store = open_store(url)
    return PeriodBudgets(
        store.db, LimitsConfig(budget=specs).budgets(), holder=holder, clock=clock, **kw
    )


def cost(usd: float) -> Usage:
    return Usage(100, 50, 1, usd)


def test_a_quote_that_does_not_fit_is_refused_and_settle_releases_the_rest(db_url: str) -> None:
    clock = Clock(ts("2026-03-01T10:00"))
    pb = budgets(db_url, {"workflow:w": "1 USD/day"}, clock)
    mine = pb.for_call(workflow="w", actor="a")
    first = pb.reserve(mine, cost(0.6))
    assert isinstance(first, Held)
    held_out = pb.reserve(mine, cost(0.6))  # 0.6 held + 0.6 > 1: refused while in flight
    assert isinstance(held_out, Refusal)
    assert held_out.until == clock.now + pb.recheck_s  # holds may settle lower: recheck soon
    pb.settle(first, cost(0.1))  # the call cost less than its quote: the rest is free again
    [state] = pb.states()
    assert (state.spent, state.held) == (pytest.approx(0.1), 0.0)
    assert isinstance(pb.reserve(mine, cost(0.6)), Held)
    spent_out = pb.reserve(mine, cost(0.6))
    assert isinstance(spent_out, Refusal)
    # 0.1 spent + 0.6 held: a recheck may help; once spent alone leaves no room, the
    # next chance is the next period
    pb2 = budgets(db_url, {"workflow:w": "1 USD/day"}, clock)
    pb2.settle(Held("x", ((mine[0], ts("2026-03-01T00:00"), 0.0),)), cost(0.5))
    refusal = pb.reserve(mine, cost(0.6))
    assert isinstance(refusal, Refusal) and refusal.until == ts("2026-03-02T00:00")
    assert "1 USD/day" in refusal.message and "2026-03-02 00:00:00 UTC" in refusal.message


def test_all_or_nothing_across_budgets(db_url: str) -> None:
    clock = Clock(ts("2026-03-01T10:00"))
    pb = budgets(db_url, {"workflow:w": "10 USD/day", "actor:a": "500 tokens/hour"}, clock)
    mine = pb.for_call(workflow="w", actor="a")
    assert len(mine) == 2
    assert isinstance(pb.reserve(mine, Usage(200, 200, 1, 1.0)), Held)
    refused = pb.reserve(mine, Usage(100, 100, 1, 1.0))  # tokens: 400 + 200 > 500
    assert isinstance(refused, Refusal) and refused.budget.unit == "tokens"
    states = {s.budget.unit: s for s in pb.states()}
    assert states["USD"].held == 1.0  # the refused call held nothing on the USD budget


def test_a_crashed_workers_hold_expires(db_url: str) -> None:
    clock = Clock(ts("2026-03-01T10:00"))
    crashed = budgets(db_url, {"global": "1 USD/day"}, clock, holder="dead", hold_s=60)
    alive = budgets(db_url, {"global": "1 USD/day"}, clock, holder="alive", hold_s=60)
    assert isinstance(crashed.reserve(crashed.budgets, cost(0.9)), Held)  # never settled
    assert isinstance(alive.reserve(alive.budgets, cost(0.9)), Refusal)
    clock.now += 61
    assert isinstance(alive.reserve(alive.budgets, cost(0.9)), Held)


def test_the_next_period_starts_afresh(db_url: str) -> None:
    clock = Clock(ts("2026-03-01T23:59:59"))
    pb = budgets(db_url, {"global": "1 USD/day"}, clock)
    held = pb.reserve(pb.budgets, cost(1.0))
    assert isinstance(held, Held)
    pb.settle(held, cost(1.0))
    assert isinstance(pb.reserve(pb.budgets, cost(0.01)), Refusal)
    clock.now = ts("2026-03-02T00:00")
    assert isinstance(pb.reserve(pb.budgets, cost(1.0)), Held)
    [state] = pb.states()
    assert state.period_start == ts("2026-03-02T00:00") and state.spent == 0.0


def test_a_call_larger_than_the_whole_budget_fails_instead_of_waiting(db_url: str) -> None:
    clock = Clock(ts("2026-03-01T10:00"))
    pb = budgets(db_url, {"actor:a": "1000 tokens/day"}, clock)
    with pytest.raises(BudgetTooSmall, match="more than the whole budget"):
        pb.reserve(pb.budgets, Usage(900, 512, 1))
    [state] = pb.states()
    assert (state.spent, state.held) == (0.0, 0.0)
