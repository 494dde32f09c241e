"""`[limits.concurrency]` and `[limits.rate]` in turing.toml, validated into `LimitKey`s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    A rate is one spec or a list of them (several windows, requests and tokens together).
    Errors name the key and the bad spec.
    """

    model_config = ConfigDict(extra="forbid")

    concurrency: dict[str, int] = Field(default_factory=dict)
    rate: dict[str, list[str]] = Field(default_factory=dict)

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
            items = [specs] if isinstance(specs, str) else specs
            if not isinstance(items, list) or not items:
                raise ValueError(f'{scope!r}: expected a rate such as "50/s" or a list of them')
            rates: list[Rate] = []
            for spec in items:
                try:
                    rate = parse_rate(spec)
                except LimitSpecError as exc:
                    raise ValueError(f"{scope!r}: {exc}") from None
                if any(r.unit == rate.unit and r.period == rate.period for r in rates):
                    raise ValueError(f"{scope!r}: two {rate.unit} limits over the same period")
                rates.append(rate)
            out[key] = [str(r) for r in rates]
        return out

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

    def _keys_of(self, scopes: Iterable[str]) -> list[LimitKey]:
        out: list[LimitKey] = []
        for scope in scopes:
            if scope in self.concurrency:
                out.append(LimitKey.parse(scope, self.concurrency[scope]))
            out.extend(LimitKey(scope, parse_rate(spec)) for spec in self.rate.get(scope, []))
        return out


def _scope(scope: Any, seen: dict[str, Any]) -> str:
    try:
        key = parse_scope(scope)
    except LimitSpecError as exc:
        raise ValueError(str(exc)) from None
    if key in seen:
        raise ValueError(f"{scope!r}: the same scope as another key ({key})")
    return key
