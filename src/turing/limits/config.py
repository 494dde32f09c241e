"""`[limits.concurrency]` and `[limits.rate]` in turing.toml, and the limits declared on
workflows (`WorkflowLimits`), validated into `LimitKey`s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from turing.limits.periods import PeriodBudget, parse_budget
from turing.limits.spec import (
    LimitKey,
    LimitSpecError,
    Rate,
    parse_concurrency,
    parse_rate,
    parse_scope,
    provider_scope,
)


class LimitsConfig(BaseModel):
    """Shared limits by scope. Scopes: `global`, `workflow:<name>`, `actor:<name>`,
    `provider:<url>` (normalised to scheme://host:port).

        [limits.concurrency]
        global = 64
        "actor:skills_extractor" = 4
        "provider:http://127.0.0.1:11434" = 2

        [limits.rate]
        global = "50/s"
        "actor:gpt" = ["500/min", "200000 tokens/min"]
        "workflow:job_skills" = "2000/day"

        [limits.budget]                      # per UTC calendar period, all workers
        "workflow:job_skills" = "5 USD/day"
        "actor:gpt" = ["50 USD/month", "2000000 tokens/day"]

    A rate is one spec or a list of them (several windows, requests and tokens together);
    so is a budget (see `turing.limits.periods`). Errors name the key and the bad spec.
    """

    model_config = ConfigDict(extra="forbid")

    concurrency: dict[str, int] = Field(default_factory=dict)
    rate: dict[str, list[str]] = Field(default_factory=dict)
    budget: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _check_concurrency(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, int] = {}
        for scope, spec in value.items():
            key = _scope(scope, out)
            try:
                out[key] = parse_concurrency(spec).slots
            except LimitSpecError as exc:
                raise ValueError(f"{scope!r}: {exc}") from None
        return out

    @field_validator("rate", mode="before")
    @classmethod
    def _check_rate(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, list[str]] = {}
        for scope, specs in value.items():
            key = _scope(scope, out)
            try:
                out[key] = [str(r) for r in _rates(specs)]
            except LimitSpecError as exc:
                raise ValueError(f"{scope!r}: {exc}") from None
        return out

    @field_validator("budget", mode="before")
    @classmethod
    def _check_budget(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, list[str]] = {}
        for scope, specs in value.items():
            key = _scope(scope, out)
            items = [specs] if isinstance(specs, str) else specs
            try:
                if not isinstance(items, list | tuple) or not items:
                    raise LimitSpecError('expected a budget such as "5 USD/day" or a list of them')
                parsed = [parse_budget(key, spec) for spec in items]
                if len({(b.unit, b.period) for b in parsed}) < len(parsed):
                    raise LimitSpecError("two budgets of the same unit over the same period")
            except LimitSpecError as exc:
                raise ValueError(f"{scope!r}: {exc}") from None
            out[key] = [b.spec for b in parsed]
        return out

    def budgets(self) -> list[PeriodBudget]:
        """Every configured period budget."""
        return [
            parse_budget(scope, spec)
            for scope, specs in sorted(self.budget.items())
            for spec in specs
        ]

    def budgets_for(
        self, *, workflow: str | None = None, actor: str | None = None
    ) -> list[PeriodBudget]:
        """The period budgets one call spends from: global, its workflow's, its actor's."""
        scopes = {"global", f"workflow:{workflow}", f"actor:{actor}"}
        return [b for b in self.budgets() if b.scope in scopes]

    def keys(self) -> list[LimitKey]:
        """Every configured limit."""
        scopes = sorted(set(self.concurrency) | set(self.rate))
        return self._keys_of(scopes)

    def keys_for(
        self,
        *,
        workflow: str | None = None,
        actor: str | None = None,
        provider: str | None = None,
    ) -> list[LimitKey]:
        """The limits one call is subject to: global plus those of its workflow, actor
        (the name in `[actors]`) and provider (its base URL). Acquire them together."""
        scopes = ["global"]
        if workflow:
            scopes.append(f"workflow:{workflow}")
        if actor:
            scopes.append(f"actor:{actor}")
        if provider:
            scopes.append(provider_scope(provider))
        return self._keys_of(scopes)

    def with_workflows(self, declared: Mapping[str, WorkflowLimits]) -> Self:
        """These limits plus those declared on workflows (`Workflow(limits=...)`, by workflow
        name), on the scope `workflow:<name>`. Where turing.toml and the workflow both limit
        the same thing (concurrency, or requests or tokens over the same period) the
        stricter one wins: every declared limit holds. Rates over different periods are
        separate limits, all enforced."""
        if not any(declared.values()):
            return self
        concurrency = dict(self.concurrency)
        rate = {scope: list(specs) for scope, specs in self.rate.items()}
        for name, limits in sorted(declared.items()):
            scope = parse_scope(f"workflow:{name}")
            if limits.concurrency is not None:
                given = concurrency.get(scope)
                concurrency[scope] = min(limits.concurrency, given or limits.concurrency)
            if limits.rate:
                merged = [parse_rate(spec) for spec in rate.get(scope, [])]
                for new in map(parse_rate, limits.rate):
                    same = [i for i, r in enumerate(merged) if _same_window(r, new)]
                    if not same:
                        merged.append(new)
                    elif new.amount < merged[same[0]].amount:
                        merged[same[0]] = new
                rate[scope] = [str(r) for r in merged]
        return self.model_copy(update={"concurrency": concurrency, "rate": rate})

    def _keys_of(self, scopes: Iterable[str]) -> list[LimitKey]:
        out: list[LimitKey] = []
        for scope in scopes:
            if scope in self.concurrency:
                out.append(LimitKey.parse(scope, self.concurrency[scope]))
            out.extend(LimitKey(scope, parse_rate(spec)) for spec in self.rate.get(scope, []))
        return out


class WorkflowLimits(BaseModel):
    """Shared limits declared on a workflow, on its scope `workflow:<name>`:

        Workflow("job_skills", ..., limits={"concurrency": 4,
                                            "rate": ["100/hour", "100000 tokens/min"]})

    `concurrency`: model calls of the workflow in flight at once, across every worker of
    the database; `rate`: one spec or a list, requests or tokens per period (the forms of
    `[limits.rate]`). The same as `"workflow:<name>"` keys in turing.toml; where both limit
    the same thing the stricter wins (`LimitsConfig.with_workflows`). Not part of the
    workflow's fingerprint: changing a limit does not make earlier results stale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int | None = None
    rate: tuple[str, ...] = ()

    @field_validator("concurrency", mode="before")
    @classmethod
    def _check_concurrency(cls, value: Any) -> Any:
        return None if value is None else parse_concurrency(value).slots

    @field_validator("rate", mode="before")
    @classmethod
    def _check_rate(cls, value: Any) -> Any:
        if value is None or (isinstance(value, list | tuple) and not value):
            return ()
        return tuple(str(r) for r in _rates(value))

    @classmethod
    def parse(cls, value: WorkflowLimits | Mapping[str, Any]) -> WorkflowLimits:
        """From a `WorkflowLimits` or a mapping; `LimitSpecError` saying what is wrong."""
        if isinstance(value, WorkflowLimits):
            return value
        if not isinstance(value, Mapping):
            raise LimitSpecError(
                f"limits {value!r}: expected a WorkflowLimits or a mapping such as "
                '{"concurrency": 4, "rate": "100/hour"}'
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'limits'}: "
                + ("unknown key (use concurrency or rate)"
                   if err["type"] == "extra_forbidden"
                   else str(err["msg"]).removeprefix("Value error, "))
                for err in exc.errors()
            )  # fmt: skip
            raise LimitSpecError(problems) from None

    def __bool__(self) -> bool:
        return self.concurrency is not None or bool(self.rate)

    def as_dict(self) -> dict[str, Any]:
        """What was declared (for `describe()` and `turing workflows show`)."""
        out: dict[str, Any] = {}
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.rate:
            out["rate"] = list(self.rate)
        return out


def _rates(specs: Any) -> list[Rate]:
    """One rate spec or a non-empty list of them, at most one per unit and period."""
    items = [specs] if isinstance(specs, str) else specs
    if not isinstance(items, list | tuple) or not items:
        raise LimitSpecError('expected a rate such as "50/s" or a list of them')
    rates: list[Rate] = []
    for spec in items:
        rate = parse_rate(spec)
        if any(_same_window(r, rate) for r in rates):
            raise LimitSpecError(f"two {rate.unit} limits over the same period")
        rates.append(rate)
    return rates


def _same_window(a: Rate, b: Rate) -> bool:
    """Two rates that would be one limit key (the same unit over the same period)."""
    return a.unit == b.unit and a.period == b.period


def _scope(scope: Any, seen: dict[str, Any]) -> str:
    try:
        key = parse_scope(scope)
    except LimitSpecError as exc:
        raise ValueError(str(exc)) from None
    if key in seen:
        raise ValueError(f"{scope!r}: the same scope as another key ({key})")
    return key
