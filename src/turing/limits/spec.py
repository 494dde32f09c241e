"""Limit specs and keys: `"50/s"`, `"100000 tokens/min"`, `4`; scopes such as `actor:gpt`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from turing.errors import ConfigError, TuringError

Unit = Literal["requests", "tokens"]

_PERIODS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_UNITS: dict[str, Unit] = {
    **dict.fromkeys(("request", "requests", "req", "call", "calls"), "requests"),
    **dict.fromkeys(("token", "tokens"), "tokens"),
}
_RATE = re.compile(
    r"""^\s*(?P<amount>\d[\d_]*)\s*(?P<unit>[a-z]+)?\s*/\s*
        (?P<count>\d+(?:\.\d+)?)?\s*(?P<period>[a-z]+)\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_NAMED_SCOPES = ("workflow", "actor")
_EXAMPLES = '"50/s", "10/min", "100/hour", "2000/day" or "100000 tokens/min"'
_SCOPES_HELP = "global, workflow:<name>, actor:<name> or provider:<url>"


class LimitError(TuringError):
    """Base of the limit errors."""


class LimitSpecError(LimitError, ConfigError, ValueError):
    """A limit spec or scope cannot be parsed; the message names it and shows valid forms."""


@dataclass(frozen=True)
class Rate:
    """At most `amount` requests (or tokens) in any window of `period` seconds."""

    amount: int
    period: float
    unit: Unit = "requests"

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise LimitSpecError(f"rate limit {self}: the amount must be at least 1")
        if self.period <= 0:
            raise LimitSpecError(f"rate limit {self}: the period must be positive")

    @property
    def tokens(self) -> bool:
        return self.unit == "tokens"

    def __str__(self) -> str:
        unit = " tokens" if self.tokens else ""
        return f"{self.amount}{unit}/{_period_text(self.period)}"


@dataclass(frozen=True)
class Concurrency:
    """At most `slots` holders at once."""

    slots: int

    def __post_init__(self) -> None:
        if isinstance(self.slots, bool) or self.slots < 1:
            raise LimitSpecError(
                f"concurrency limit {self.slots!r}: must be a whole number of at least 1"
            )

    def __str__(self) -> str:
        return f"{self.slots} at once"


Limit = Rate | Concurrency


@dataclass(frozen=True)
class LimitKey:
    """A limit on a scope. Keys with the same `id` share one record in the database.

    The id leaves out the amount, so a changed limit applies at once to the history already
    recorded; two rates of one scope with different periods ("10/s" and "500/min") are
    separate keys, both enforced.
    """

    scope: str
    limit: Limit

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", parse_scope(self.scope))

    @classmethod
    def parse(cls, scope: str, spec: str | int) -> LimitKey:
        """`LimitKey.parse("actor:gpt", "500/min")`, `LimitKey.parse("global", 64)`."""
        return cls(scope, parse_limit(spec))

    @property
    def id(self) -> str:
        if isinstance(self.limit, Concurrency):
            return f"{self.scope}|concurrency"
        return f"{self.scope}|{self.limit.unit}/{self.limit.period:g}s"

    @property
    def is_rate(self) -> bool:
        return isinstance(self.limit, Rate)

    @property
    def is_tokens(self) -> bool:
        return isinstance(self.limit, Rate) and self.limit.tokens

    def __str__(self) -> str:
        return f"{self.scope} {self.limit}"


def _period_text(seconds: float) -> str:
    for name, length in (("day", 86400.0), ("hour", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds == length:
            return name
    for name, length in (("day", 86400.0), ("hour", 3600.0), ("min", 60.0)):
        if seconds % length == 0:
            return f"{seconds / length:g}{name}"
    return f"{seconds:g}s"


def parse_rate(spec: str) -> Rate:
    """`"50/s"`, `"100/hour"`, `"100000 tokens/min"`, `"200_000 tokens/5min"`."""
    if not isinstance(spec, str):
        raise LimitSpecError(f"rate limit {spec!r}: expected text such as {_EXAMPLES}")
    m = _RATE.match(spec)
    if m is None:
        raise LimitSpecError(f"invalid rate limit {spec!r}: expected {_EXAMPLES}")
    unit_text = (m["unit"] or "requests").lower()
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise LimitSpecError(
            f"invalid rate limit {spec!r}: unknown unit {m['unit']!r} "
            f"(leave it out for requests, or write tokens)"
        )
    period = _PERIODS.get(m["period"].lower())
    if period is None:
        raise LimitSpecError(
            f"invalid rate limit {spec!r}: unknown period {m['period']!r} (use s, min, hour or day)"
        )
    count = float(m["count"]) if m["count"] else 1.0
    amount = int(m["amount"].replace("_", ""))
    if amount < 1 or count <= 0:
        raise LimitSpecError(f"invalid rate limit {spec!r}: amount and period must be positive")
    return Rate(amount, period * count, unit)


def parse_concurrency(spec: int | str) -> Concurrency:
    """A whole number of at least 1 (`4` or `"4"`)."""
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if not isinstance(spec, int) or isinstance(spec, bool):
        raise LimitSpecError(f"concurrency limit {spec!r}: must be a whole number of at least 1")
    return Concurrency(spec)


def parse_limit(spec: str | int) -> Limit:
    """A rate (text with a `/`) or a concurrency limit (a whole number)."""
    if isinstance(spec, str) and "/" in spec:
        return parse_rate(spec)
    if isinstance(spec, int | str):
        try:
            return parse_concurrency(spec)
        except LimitSpecError:
            pass
    raise LimitSpecError(
        f"invalid limit {spec!r}: expected a rate such as {_EXAMPLES}, "
        f"or a whole number of concurrent calls"
    )


def parse_scope(scope: str) -> str:
    """Check a scope and normalise it (a provider scope keeps only scheme, host and port)."""
    if not isinstance(scope, str):
        raise LimitSpecError(f"limit scope {scope!r}: expected {_SCOPES_HELP}")
    text = scope.strip()
    if text == "global":
        return text
    kind, sep, name = text.partition(":")
    if sep and kind == "provider":
        return provider_scope(name)
    if not sep or kind not in _NAMED_SCOPES:
        raise LimitSpecError(f"unknown limit scope {scope!r}: use {_SCOPES_HELP}")
    if not name or any(c.isspace() for c in name) or "|" in name:
        raise LimitSpecError(
            f"limit scope {scope!r}: the {kind} name must be non-empty, without spaces or '|'"
        )
    return f"{kind}:{name}"


def provider_scope(base_url: str) -> str:
    """`provider:<scheme>://<host>[:port]` for a provider's base URL (path dropped)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise LimitSpecError(
            f"limit scope 'provider:{base_url}': expected the provider's URL, "
            f"e.g. provider:http://127.0.0.1:11434"
        )
    return f"provider:{parts.scheme.lower()}://{parts.netloc.lower()}"
