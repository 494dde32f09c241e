"""Checks: deterministic predicates over a validated output and its input.

A contract proves an answer has the right shape, not that it is true. A check proves a
little more, cheaply and without a model: a quoted phrase occurs in the source text, a
value belongs to a known set, a number lies in a range the input allows, a list is not too
long, or anything a Python callable can decide.

    Workflow(..., checks=[
        grounded("skills[].reasoning", within="description"),
        one_of("skills[].name", values=load_taxonomy),        # a set, or a callable giving one
        within("years_required", low=0, high=60),
        length("skills", low=1, high=40),
        custom("title_kept", lambda out, inp: [] if out["title"] == inp["title"] else ["..."]),
    ])

Paths name fields of the output: `a.b`, and `a[].b` for every element of the list `a`.
A failed check is handled like a contract violation: the model is asked again with the
failure named (`on_fail="reask"`, the default; a script step's output fails the run), the
next actor of the step's cascade is asked instead (`on_fail="escalate"`: `LLMStep(actor=
["small", "large"])`; on the last actor, or without a cascade, it re-asks), or the answer
is accepted and the failure recorded (`on_fail="flag"`), or accepted and the task held
for a reviewer with the failure as the reason (`on_fail="review"`; see `turing.review`).
Each failure is recorded on the call as a violation with rule `check:<name>`, so history
and `turing stats` count them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from turing.errors import Violation

OnFail = Literal["reask", "escalate", "flag", "review"]
Predicate = Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[str]]


@dataclass(frozen=True)
class Check:
    """One named predicate; `test(output, input)` returns the failures (empty: it holds)."""

    name: str
    test: Predicate = field(compare=False)
    on_fail: OnFail = "reask"
    description: str = ""

    def violations(self, output: Any, data: Mapping[str, Any]) -> list[Violation]:
        if not isinstance(output, Mapping):
            return []
        return [
            Violation("$", f"check:{self.name}", message, "") for message in self.test(output, data)
        ]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "on_fail": self.on_fail, "description": self.description}


def values_at(value: Any, path: str) -> list[tuple[str, Any]]:
    """(json path, value) of every value at `path` (`a.b`, `a[].b`); missing ones are skipped."""
    found: list[tuple[str, Any]] = [("$", value)]
    for part in path.split("."):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        step: list[tuple[str, Any]] = []
        for where, node in found:
            if not isinstance(node, Mapping) or key not in node:
                continue
            child = node[key]
            if each:
                if isinstance(child, list):
                    step += [(f"{where}.{key}[{i}]", item) for i, item in enumerate(child)]
            else:
                step.append((f"{where}.{key}", child))
        found = step
    return found


def _normal(text: str) -> str:
    return " ".join(str(text).lower().split())


def _strip_quotes(text: str) -> str:
    return text.strip().strip("\"'“”‘’").strip()


def grounded(
    path: str, *, within: str | Sequence[str], on_fail: OnFail = "reask", name: str | None = None
) -> Check:
    """Every string at `path` (quotes around it ignored) must occur in the input field(s)
    `within`, case and whitespace aside: a quote the source does not contain is invented."""
    fields = [within] if isinstance(within, str) else list(within)

    def test(output: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        source = _normal(" \n ".join(str(data.get(f) or "") for f in fields))
        failures = []
        for where, value in values_at(output, path):
            if isinstance(value, str) and _normal(_strip_quotes(value)) not in source:
                short = value if len(value) <= 80 else value[:77] + "..."
                failures.append(f"{where}: {short!r} does not occur in {', '.join(fields)}")
        return failures

    return Check(name or f"grounded:{path}", test, on_fail, f"{path} occurs in {fields}")


def one_of(
    path: str,
    *,
    values: Iterable[Any] | Callable[[], Iterable[Any]],
    normalise: bool = True,
    on_fail: OnFail = "reask",
    name: str | None = None,
) -> Check:
    """Every value at `path` must belong to `values` (a set, or a callable giving one, read
    once on first use: a taxonomy file, a table read at start)."""
    known: list[set[Any]] = []

    def allowed() -> set[Any]:
        if not known:
            source = values() if callable(values) else values
            known.append({_normal(v) if normalise else v for v in source})
        return known[0]

    def test(output: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        ok = allowed()
        return [
            f"{where}: {value!r} is not a known value"
            for where, value in values_at(output, path)
            if (_normal(value) if normalise and isinstance(value, str) else value) not in ok
        ]

    return Check(name or f"one_of:{path}", test, on_fail, f"{path} in a known set")


Bound = float | Callable[[Mapping[str, Any]], float | None] | None


def within(
    path: str, *, low: Bound = None, high: Bound = None, on_fail: OnFail = "reask",
    name: str | None = None,
) -> Check:  # fmt: skip
    """Every number at `path` lies in [low, high]; a bound may be derived from the input
    (`high=lambda inp: inp["max_years"]`)."""

    def bound(b: Bound, data: Mapping[str, Any]) -> float | None:
        return b(data) if callable(b) else b

    def test(output: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        lo, hi = bound(low, data), bound(high, data)
        failures = []
        for where, value in values_at(output, path):
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                failures.append(f"{where}: {value} is outside [{lo}, {hi}]")
        return failures

    return Check(name or f"within:{path}", test, on_fail, f"{path} within bounds")


def length(
    path: str, *, low: int | None = None, high: int | None = None, on_fail: OnFail = "reask",
    name: str | None = None,
) -> Check:  # fmt: skip
    """The list (or string) at `path` has between `low` and `high` items."""

    def test(output: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        failures = []
        for where, value in values_at(output, path):
            if isinstance(value, list | str):
                n = len(value)
                if (low is not None and n < low) or (high is not None and n > high):
                    failures.append(f"{where}: {n} items, expected between {low} and {high}")
        return failures

    return Check(name or f"length:{path}", test, on_fail, f"len({path}) within bounds")


def custom(
    name: str, test: Predicate, *, on_fail: OnFail = "reask", description: str = ""
) -> Check:
    """Any predicate: `test(output, input)` returns the failures as messages."""
    return Check(name, test, on_fail, description)


_NAME = re.compile(r"^[\w:.\[\]-]+$")


def validate_checks(checks: Sequence[Check]) -> list[str]:
    """Problems with a workflow's checks (names unique and printable), for load time."""
    return validate_named(
        checks, Check, "check", "a Check (use turing.checks: grounded, one_of...)"
    )


def validate_named(items: Sequence[Any], kind: type, noun: str, expected: str) -> list[str]:
    """Problems with named gates (checks, review rules): each of `kind`, its name printable
    and unique."""
    problems = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, kind):
            problems.append(f"{item!r} is not {expected}")
            continue
        name: str = getattr(item, "name", "")
        if not _NAME.match(name):
            problems.append(f"{noun} name {name!r} must be letters, digits, : . [ ] - _")
        if name in seen:
            problems.append(f"two {noun}s are named {name!r}")
        seen.add(name)
    return problems
