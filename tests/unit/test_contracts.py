"""Contract semantics: the same rules whether a contract is a pydantic model or raw JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from turing.contracts import Contract, as_contract, json_path
from turing.errors import ContractViolation, InputInvalid, Violation


class Skill(BaseModel):
    name: str
    weight: float = Field(ge=0, le=1)


class Posting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    posting_id: int
    title: str = Field(min_length=2, max_length=10)
    level: Literal["junior", "senior"] = "junior"
    years: int = Field(default=0, ge=0, le=50)
    rate: float = 1.0
    salary: float | None = None
    note: Optional[int] = None  # noqa: UP045 - the typing.Optional spelling on purpose
    email: str = Field(default="hr@example.com", json_schema_extra={"format": "email"})
    posted: datetime = Field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    skills: list[Skill] = []


RAW_POSTING: dict[str, Any] = {
    "title": "Posting",
    "type": "object",
    "additionalProperties": False,
    "required": ["posting_id", "title"],
    "properties": {
        "posting_id": {"type": "integer"},
        "title": {"type": "string", "minLength": 2, "maxLength": 10},
        "level": {"enum": ["junior", "senior"], "default": "junior"},
        "years": {"type": "integer", "minimum": 0, "maximum": 50, "default": 0},
        "rate": {"type": "number", "default": 1.0},
        "salary": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
        "note": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        "email": {"type": "string", "format": "email"},
        "posted": {"type": "string", "format": "date-time"},
        "skills": {"type": "array", "items": {"$ref": "#/$defs/Skill"}, "default": []},
    },
    "$defs": {
        "Skill": {
            "type": "object",
            "required": ["name", "weight"],
            "properties": {
                "name": {"type": "string"},
                "weight": {"type": "number", "minimum": 0, "maximum": 1},
            },
        }
    },
}

MINIMAL = {"posting_id": 1, "title": "Engineer"}


@pytest.fixture(params=["pydantic", "raw"])
def posting(request: pytest.FixtureRequest) -> Contract:
    if request.param == "pydantic":
        return Contract.from_model(Posting)
    return Contract(RAW_POSTING)


def skills(*weights: Any) -> list[dict[str, Any]]:
    return [{"name": f"s{i}", "weight": w} for i, w in enumerate(weights)]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="defaults-are-optional"),
        pytest.param({"note": None, "salary": None}, id="optional-accepts-null"),
        pytest.param({"note": 3, "salary": 2.5}, id="optional-accepts-value"),
        pytest.param({"salary": 3}, id="int-is-a-number"),
        pytest.param({"level": "senior"}, id="enum-member"),
        pytest.param({"years": 0}, id="minimum-inclusive"),
        pytest.param({"years": 50}, id="maximum-inclusive"),
        pytest.param({"title": "ab"}, id="min-length-inclusive"),
        pytest.param({"title": "a" * 10}, id="max-length-inclusive"),
        pytest.param({"email": "ann@example.com"}, id="email"),
        pytest.param({"posted": "2024-05-01T12:30:00Z"}, id="date-time-utc"),
        pytest.param({"posted": "2024-05-01T12:30:00+02:00"}, id="date-time-offset"),
        pytest.param({"skills": skills(0, 0.5, 1)}, id="nested-items"),
        pytest.param({"skills": []}, id="empty-list"),
    ],
)
def test_valid_instances_pass(posting: Contract, extra: dict[str, Any]) -> None:
    instance = {**MINIMAL, **extra}
    assert posting.is_valid(instance)
    assert posting.violations(instance) == []
    posting.check(instance)  # does not raise


@pytest.mark.parametrize(
    ("extra", "path", "rule"),
    [
        pytest.param({"posting_id": True}, "$.posting_id", "type", id="bool-is-not-int"),
        pytest.param({"posting_id": 1.5}, "$.posting_id", "type", id="float-is-not-int"),
        pytest.param({"posting_id": "1"}, "$.posting_id", "type", id="str-is-not-int"),
        pytest.param({"rate": True}, "$.rate", "type", id="bool-is-not-number"),
        pytest.param({"salary": True}, "$.salary", "anyOf", id="bool-is-not-optional-number"),
        pytest.param({"note": "x"}, "$.note", "anyOf", id="optional-rejects-string"),
        pytest.param({"note": {}}, "$.note", "anyOf", id="optional-rejects-object"),
        pytest.param({"note": [1]}, "$.note", "anyOf", id="optional-rejects-array"),
        pytest.param({"level": "mid"}, "$.level", "enum", id="enum-non-member"),
        pytest.param({"level": "Senior"}, "$.level", "enum", id="enum-is-case-sensitive"),
        pytest.param({"years": -1}, "$.years", "minimum", id="below-minimum"),
        pytest.param({"years": 51}, "$.years", "maximum", id="above-maximum"),
        pytest.param({"title": "a"}, "$.title", "minLength", id="too-short"),
        pytest.param({"title": "a" * 11}, "$.title", "maxLength", id="too-long"),
        pytest.param({"email": "not-an-email"}, "$.email", "format", id="bad-email"),
        pytest.param({"posted": "yesterday"}, "$.posted", "format", id="bad-date-time"),
        pytest.param({"posted": "2024-05-01"}, "$.posted", "format", id="date-is-not-date-time"),
        pytest.param(
            {"skills": skills(0.1, 0.2, 2)}, "$.skills[2].weight", "maximum", id="deep-item"
        ),
        pytest.param(
            {"skills": skills(0.1, "high")}, "$.skills[1].weight", "type", id="deep-item-type"
        ),
        pytest.param({"skills": [{"weight": 0.5}]}, "$.skills[0]", "required", id="deep-required"),
        pytest.param({"skills": {"name": "x"}}, "$.skills", "type", id="object-is-not-array"),
        pytest.param({"unexpected": 1}, "$", "additionalProperties", id="extra-forbidden"),
    ],
)
def test_invalid_instances_name_path_and_rule(
    posting: Contract, extra: dict[str, Any], path: str, rule: str
) -> None:
    instance = {**MINIMAL, **extra}
    assert not posting.is_valid(instance)
    found = posting.violations(instance)
    assert [(v.path, v.rule) for v in found] == [(path, rule)]


@pytest.mark.parametrize("missing", ["posting_id", "title"])
def test_required_fields_are_required(posting: Contract, missing: str) -> None:
    instance = {k: v for k, v in MINIMAL.items() if k != missing}
    [violation] = posting.violations(instance)
    assert (violation.path, violation.rule) == ("$", "required")
    assert repr(missing) in violation.message or f'"{missing}"' in violation.message


def test_pydantic_extra_forbid_becomes_additional_properties_false() -> None:
    assert Contract.from_model(Posting).schema["additionalProperties"] is False

    class Open(BaseModel):
        a: int

    assert "additionalProperties" not in Contract.from_model(Open).schema
    assert Contract.from_model(Open).is_valid({"a": 1, "anything": 2})


def test_fields_and_required(posting: Contract) -> None:
    assert posting.required == frozenset({"posting_id", "title"})
    assert set(posting.fields) == {
        "posting_id",
        "title",
        "level",
        "years",
        "rate",
        "salary",
        "note",
        "email",
        "posted",
        "skills",
    }


def test_violation_carries_path_rule_message_and_truncated_value(posting: Contract) -> None:
    long_title = "x" * 500
    [violation] = posting.violations({**MINIMAL, "title": long_title})
    assert violation.path == "$.title"
    assert violation.rule == "maxLength"
    assert violation.message.endswith("is longer than 10 characters")  # reason survives
    assert len(violation.value) == 80
    assert violation.value.startswith('"xxxx')
    assert violation.value.endswith("…")
    assert len(violation.message) <= 200
    assert str(violation) == f"$.title: {violation.message} [rule: maxLength]"


def test_violations_are_limited(posting: Contract) -> None:
    instance = {**MINIMAL, "skills": skills(*([5] * 30))}
    assert len(posting.violations(instance)) == 20
    assert len(posting.violations(instance, limit=3)) == 3


def test_check_raises_contract_violation_naming_workflow_and_version(posting: Contract) -> None:
    with pytest.raises(ContractViolation) as info:
        posting.check({**MINIMAL, "years": 99}, workflow="talent_extract", version=3, what="output")
    exc = info.value
    assert type(exc) is ContractViolation
    assert exc.workflow == "talent_extract"
    assert exc.version == 3
    assert [v.path for v in exc.violations] == ["$.years"]
    text = str(exc)
    assert text.startswith(
        f"output breaks contract {posting.name!r} of workflow 'talent_extract' v3"
    )
    assert "$.years" in text
    assert "[rule: maximum]" in text


def test_check_on_input_raises_input_invalid(posting: Contract) -> None:
    with pytest.raises(InputInvalid) as info:
        posting.check({"title": "ok"}, workflow="demo", version=2, what="input", is_input=True)
    assert isinstance(info.value, ContractViolation)
    assert info.value.exit_code == 2
    assert "input breaks contract" in str(info.value)
    assert "of workflow 'demo' v2" in str(info.value)


def test_contract_name_defaults() -> None:
    assert Contract.from_model(Posting).name == "Posting"
    assert Contract(RAW_POSTING).name == "Posting"
    assert Contract({"type": "object"}).name == "contract"
    assert Contract({"type": "object"}, name="x.y", version=4).describe()["version"] == 4


@pytest.mark.parametrize("kind", ["pydantic", "raw"])
def test_hash_is_stable_across_compilations(kind: str) -> None:
    def build() -> Contract:
        return Contract.from_model(Posting) if kind == "pydantic" else Contract(RAW_POSTING)

    first, second = build(), build()
    assert first.hash == second.hash
    assert len(first.hash) == 64
    assert first.describe() == {"name": "Posting", "version": 1, "hash": first.hash}


def test_hash_ignores_key_order() -> None:
    reordered = dict(reversed(list(RAW_POSTING.items())))
    assert Contract(reordered).hash == Contract(RAW_POSTING).hash


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s["properties"]["title"].update(maxLength=11), id="bound"),
        pytest.param(lambda s: s["required"].append("level"), id="required"),
        pytest.param(lambda s: s["properties"].update(extra={"type": "string"}), id="new-field"),
        pytest.param(
            lambda s: s["$defs"]["Skill"]["properties"]["weight"].update(maximum=2),
            id="inside-defs",
        ),
    ],
)
def test_hash_changes_when_schema_changes(change: Any) -> None:
    changed = json.loads(json.dumps(RAW_POSTING))
    change(changed)
    assert Contract(changed).hash != Contract(RAW_POSTING).hash


def test_hash_changes_when_pydantic_model_changes() -> None:
    class A(BaseModel):
        x: int

    class B(BaseModel):
        x: int = Field(ge=0)

    assert Contract.from_model(A, name="m").hash != Contract.from_model(B, name="m").hash


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False


def test_defs_refs_are_inlined(posting: Contract) -> None:
    assert "$defs" not in posting.schema
    assert not _has_ref(posting.schema)
    items = posting.schema["properties"]["skills"]["items"]
    assert items["properties"]["weight"]["maximum"] == 1
    assert items["required"] == ["name", "weight"]


def test_inlining_does_not_mutate_the_given_schema() -> None:
    original = json.loads(json.dumps(RAW_POSTING))
    Contract(original)
    assert original == RAW_POSTING


def test_ref_siblings_are_kept_when_inlining() -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"$ref": "#/$defs/S", "description": "kept"}},
        "$defs": {"S": {"type": "string"}},
    }
    contract = Contract(schema)
    assert contract.schema["properties"]["s"] == {"type": "string", "description": "kept"}


def test_recursive_model_keeps_its_defs_and_still_validates() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    contract = Contract.from_model(Node)
    assert "$defs" in contract.schema
    assert contract.is_valid({"name": "a", "children": [{"name": "b", "children": []}]})
    [violation] = contract.violations({"name": "a", "children": [{"name": "b", "children": [{}]}]})
    assert (violation.path, violation.rule) == ("$.children[0].children[0]", "required")


def test_as_contract_accepts_contract_model_and_mapping() -> None:
    contract = Contract(RAW_POSTING)
    assert as_contract(contract) is contract
    from_model = as_contract(Posting, name="wf.input", version=2)
    assert (from_model.name, from_model.version, from_model.model) == ("wf.input", 2, Posting)
    from_raw = as_contract(RAW_POSTING, name="wf.output")
    assert (from_raw.name, from_raw.model) == ("wf.output", None)
    assert from_raw.schema["required"] == ["posting_id", "title"]


@pytest.mark.parametrize("bad", [42, "schema", [{"type": "object"}], Violation])
def test_as_contract_rejects_other_values(bad: Any) -> None:
    with pytest.raises(TypeError, match="expected a Contract"):
        as_contract(bad)


def test_invalid_schema_is_a_value_error_naming_the_contract() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema for contract 'broken'"):
        Contract({"type": "nonsense"}, name="broken")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [([], "$"), (["skills", 2, "weight"], "$.skills[2].weight"), ([0, 1], "$[0][1]")],
)
def test_json_path(parts: list[Any], expected: str) -> None:
    assert json_path(parts) == expected


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        pytest.param({"s": list(range(300))}, 'is not of type "string"', id="long-array"),
        pytest.param({"s": {"k": "v" * 300}}, 'is not of type "string"', id="long-object"),
        pytest.param({"e": "é" * 300}, 'is not one of "a" or "b"', id="long-unicode-string"),
    ],
)
def test_long_values_are_cut_but_the_reason_is_kept(instance: Any, reason: str) -> None:
    contract = Contract(
        {"type": "object", "properties": {"s": {"type": "string"}, "e": {"enum": ["a", "b"]}}}
    )
    [violation] = contract.violations(instance)
    assert violation.message.endswith(reason)
    assert "…" in violation.message
    assert len(violation.message) <= 200
