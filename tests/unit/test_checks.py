"""Checks: each common predicate on outputs and inputs, paths into lists, and load-time
validation of a workflow's checks."""

from __future__ import annotations

import pytest

from turing.checks import custom, grounded, length, one_of, values_at, within

POSTING = {"description": "We need strong  PostgreSQL skills and some Python."}


def test_values_at_walks_fields_and_lists() -> None:
    out = {"skills": [{"name": "a"}, {"name": "b"}, {"other": 1}], "n": 3}
    assert values_at(out, "skills[].name") == [("$.skills[0].name", "a"), ("$.skills[1].name", "b")]
    assert values_at(out, "n") == [("$.n", 3)]
    assert values_at(out, "missing.x") == []


def test_grounded_ignores_case_whitespace_and_quotes_but_not_inventions() -> None:
    check = grounded("skills[].quote", within="description")
    ok = {"skills": [{"quote": '"strong postgresql   skills"'}, {"quote": "some python"}]}
    assert check.violations(ok, POSTING) == []
    bad = {"skills": [{"quote": "10 years of Kubernetes"}]}
    [v] = check.violations(bad, POSTING)
    assert v.rule == "check:grounded:skills[].quote"
    assert "$.skills[0].quote" in v.message and "does not occur in description" in v.message


def test_one_of_reads_its_values_once_and_normalises() -> None:
    loads: list[int] = []

    def taxonomy() -> list[str]:
        loads.append(1)
        return ["PostgreSQL", "Python"]

    check = one_of("skills[].name", values=taxonomy)
    assert check.violations({"skills": [{"name": "python"}]}, {}) == []
    [v] = check.violations({"skills": [{"name": "Cobol"}]}, {})
    assert "'Cobol' is not a known value" in v.message
    assert loads == [1]


def test_within_takes_bounds_from_the_input() -> None:
    check = within("years", low=0, high=lambda data: data["max_years"])
    assert check.violations({"years": 5}, {"max_years": 10}) == []
    [v] = check.violations({"years": 12}, {"max_years": 10})
    assert "12 is outside [0, 10]" in v.message


def test_length_and_custom() -> None:
    assert length("skills", low=1, high=2).violations({"skills": [1, 2, 3]}, {})
    assert not length("skills", low=1, high=3).violations({"skills": [1, 2, 3]}, {})
    same = custom("title_kept", lambda o, i: [] if o["title"] == i["title"] else ["title changed"])
    [v] = same.violations({"title": "b"}, {"title": "a"})
    assert (v.rule, v.message) == ("check:title_kept", "title changed")


def test_a_workflows_checks_are_validated_when_it_loads() -> None:
    from pydantic import BaseModel

    from turing import ScriptStep, Workflow
    from turing.errors import WorkflowDefinitionError

    class Item(BaseModel):
        item_id: int

    two = [length("x", high=1, name="same"), length("y", high=1, name="same")]
    with pytest.raises(WorkflowDefinitionError, match="two checks are named 'same'"):
        Workflow("w", input=Item, output=Item, steps=[ScriptStep("s", run=dict)], checks=two)
    with pytest.raises(WorkflowDefinitionError, match="is not a Check"):
        Workflow("w", input=Item, output=Item, steps=[ScriptStep("s", run=dict)],
                 checks=["nope"])  # type: ignore[list-item]  # fmt: skip
