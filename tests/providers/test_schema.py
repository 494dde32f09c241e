"""strict_schema (OpenAI's strict subset) and drop_added_nulls (its inverse for answers)."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from turing.contracts import Contract
from turing.providers._schema import (
    NotStrictable,
    accepts_null,
    drop_added_nulls,
    nullable,
    schema_name,
    strict_schema,
)


def obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required is not None:
        out["required"] = required
    return out


def objects(schema: Any) -> list[dict[str, Any]]:
    """Every object schema inside `schema` (properties, items, anyOf, $defs)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or "object" in (node.get("type") or []):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "optional becomes nullable and required",
        obj({"a": {"type": "string"}, "b": {"type": "integer"}}, ["a"]),
        obj(
            {"a": {"type": "string"}, "b": {"type": ["integer", "null"]}},
            ["a", "b"],
            additionalProperties=False,
        ),
    ),
    (
        "already nullable optional stays as it is",
        obj({"b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}}),
        obj(
            {"b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            ["b"],
            additionalProperties=False,
        ),
    ),
    (
        "optional enum gains null in type and enum",
        obj({"level": {"type": "string", "enum": ["low", "high"]}}),
        obj(
            {"level": {"type": ["string", "null"], "enum": ["low", "high", None]}},
            ["level"],
            additionalProperties=False,
        ),
    ),
    (
        "optional anyOf gains a null branch",
        obj({"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}),
        obj(
            {"v": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}},
            ["v"],
            additionalProperties=False,
        ),
    ),
    (
        "optional const is wrapped in anyOf with null",
        obj({"k": {"const": "x", "description": "fixed"}}),
        obj(
            {"k": {"anyOf": [{"const": "x"}, {"type": "null"}], "description": "fixed"}},
            ["k"],
            additionalProperties=False,
        ),
    ),
    (
        "nested objects: closed and fully required at every level",
        obj(
            {"outer": obj({"inner": obj({"x": {"type": "number"}}, ["x"])}, ["inner"])},
            ["outer"],
        ),
        obj(
            {
                "outer": obj(
                    {"inner": obj({"x": {"type": "number"}}, ["x"], additionalProperties=False)},
                    ["inner"],
                    additionalProperties=False,
                )
            },
            ["outer"],
            additionalProperties=False,
        ),
    ),
    (
        "arrays of objects",
        obj(
            {
                "items": {
                    "type": "array",
                    "items": obj({"n": {"type": "string"}, "w": {"type": "integer"}}, ["n"]),
                    "minItems": 1,
                    "uniqueItems": True,
                }
            },
            ["items"],
        ),
        obj(
            {
                "items": {
                    "type": "array",
                    "items": obj(
                        {"n": {"type": "string"}, "w": {"type": ["integer", "null"]}},
                        ["n", "w"],
                        additionalProperties=False,
                    ),
                    "minItems": 1,
                }
            },
            ["items"],
            additionalProperties=False,
        ),
    ),
    (
        "unsupported keywords dropped, supported ones kept",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Thing",
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "title": "Name",
                    "minLength": 1,
                    "maxLength": 80,
                    "pattern": "^[a-z]+$",
                    "description": "lower case",
                },
                "when": {"type": "string", "format": "date"},
                "site": {"type": "string", "format": "uri"},
                "look": {"type": "string", "pattern": "^(?!x).*$"},
                "n": {
                    "type": "integer",
                    "minimum": 1,
                    "exclusiveMaximum": 10,
                    "multipleOf": 1,
                    "default": 3,
                    "examples": [2],
                },
            },
            "required": ["name", "when", "site", "look", "n"],
        },
        obj(
            {
                "name": {"type": "string", "pattern": "^[a-z]+$", "description": "lower case"},
                "when": {"type": "string", "format": "date"},
                "site": {"type": "string"},
                "look": {"type": "string"},
                "n": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10, "multipleOf": 1},
            },
            ["name", "when", "site", "look", "n"],
            additionalProperties=False,
        ),
    ),
    (
        "oneOf becomes anyOf, allOf is merged",
        {
            "allOf": [
                obj({"a": {"type": "string"}}, ["a"]),
                {"properties": {"b": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]}}},
            ]
        },
        obj(
            {
                "a": {"type": "string"},
                "b": {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "null"}]},
            },
            ["a", "b"],
            additionalProperties=False,
        ),
    ),
    (
        "additionalProperties schema on an object with properties becomes false",
        obj({"a": {"type": "string"}}, ["a"], additionalProperties={"type": "string"}),
        obj({"a": {"type": "string"}}, ["a"], additionalProperties=False),
    ),
]


@pytest.mark.parametrize(
    ("original", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_strict_schema(original: dict[str, Any], expected: dict[str, Any]) -> None:
    before = repr(original)
    assert strict_schema(original) == expected
    assert repr(original) == before  # the input is not modified


RECURSIVE = {
    "$defs": {
        "Node": obj(
            {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            ["name"],
        )
    },
    "$ref": "#/$defs/Node",
}


def test_recursive_refs_keep_their_defs_which_are_made_strict() -> None:
    out = strict_schema(RECURSIVE)
    node = out["$defs"]["Node"]
    assert node["required"] == ["name", "children"]
    assert node["additionalProperties"] is False
    assert node["properties"]["children"] == {
        "type": ["array", "null"],
        "items": {"$ref": "#/$defs/Node"},
    }
    assert out["$ref"] == "#/$defs/Node"


def test_ref_with_siblings_moves_into_any_of() -> None:
    schema = {
        "$defs": {"P": obj({"x": {"type": "integer"}}, ["x"])},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P", "description": "a point"}},
        "required": ["p"],
    }
    out = strict_schema(schema)
    assert out["properties"]["p"] == {"anyOf": [{"$ref": "#/$defs/P"}], "description": "a point"}


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        (obj({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}), "free-form"),
        (obj({"m": {"type": "object"}}), "free-form"),
        (obj({"x": {}}), "any type"),
        (obj({"x": {"description": "anything"}}), "any type"),
        ({"type": "array", "items": {"type": "string"}}, "top level"),
        ({"anyOf": [obj({"a": {"type": "string"}}), obj({"b": {"type": "string"}})]}, "top level"),
        (obj({"t": {"type": "array", "prefixItems": [{"type": "string"}]}}), "items"),
        (obj({"x": True}), "must be an object"),
        (obj({"r": {"$ref": "https://example.com/schema.json"}}), "local"),
    ],
)
def test_not_strictable(schema: dict[str, Any], why: str) -> None:
    with pytest.raises(NotStrictable, match=why):
        strict_schema(schema)


def test_empty_object_with_additional_properties_false_is_fine() -> None:
    assert strict_schema(obj({"e": obj({}, additionalProperties=False)}, ["e"]))["properties"][
        "e"
    ] == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, {"type": ["string", "null"]}),
        ({"type": ["string", "integer"]}, {"type": ["string", "integer", "null"]}),
        ({"enum": [1, 2]}, {"enum": [1, 2, None]}),
        ({"$ref": "#/$defs/X"}, {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}),
        ({"type": ["string", "null"]}, {"type": ["string", "null"]}),
        ({"const": None}, {"const": None}),
    ],
)
def test_nullable(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert nullable(schema) == expected
    assert accepts_null(nullable(schema))


def test_schema_name_is_sanitised_and_capped() -> None:
    assert schema_name("talent.skills v2") == "talent_skills_v2"
    assert schema_name("ok-name_1") == "ok-name_1"
    assert schema_name("x" * 100) == "x" * 64
    assert schema_name("") == "output"


# --- the transformed schema still accepts what the original accepted -------------------


class Skill(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    level: Literal["low", "mid", "high"]
    years: int | None = Field(default=None, ge=0, le=50)
    note: str = ""
    tags: list[str] = Field(default_factory=list, max_length=5)


class Extraction(BaseModel):
    subject_id: int = Field(ge=1)
    skills: list[Skill]
    summary: str | None = None
    primary: Skill | None = None
    score: float = Field(default=0.5, ge=0, le=1)


SAMPLES: list[dict[str, Any]] = [
    {"subject_id": 1, "skills": []},
    {"subject_id": 2, "skills": [{"name": "sql", "level": "high"}], "summary": None},
    {
        "subject_id": 3,
        "skills": [{"name": "go", "level": "low", "years": 3, "note": "n", "tags": ["x"]}],
        "summary": "s",
        "primary": {"name": "go", "level": "low"},
        "score": 1,
    },
]


def fill_nulls(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """What a strict-mode model writes for `value`: null for every property left out."""
    if "$ref" in schema:
        return fill_nulls(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if isinstance(value, dict):
        for branch in schema.get("anyOf", []):
            if "properties" in branch or "$ref" in branch:
                return fill_nulls(value, branch, root)
        props = schema.get("properties", {})
        return {k: fill_nulls(value.get(k), sub, root) for k, sub in props.items()}
    if isinstance(value, list) and "items" in schema:
        return [fill_nulls(v, schema["items"], root) for v in value]
    return value


@pytest.mark.parametrize("sample", SAMPLES)
def test_strict_version_accepts_what_the_original_accepts(sample: dict[str, Any]) -> None:
    original = Extraction.model_json_schema()
    strict = strict_schema(original)
    jsonschema.validate(sample, original)
    as_written = fill_nulls(sample, original, original)
    jsonschema.validate(as_written, strict)
    # and dropping the added nulls gives back a value the original accepts
    back = drop_added_nulls(as_written, original)
    jsonschema.validate(back, original)
    assert Extraction.model_validate(back) == Extraction.model_validate(sample)


def test_pydantic_dump_is_valid_under_the_strict_version() -> None:
    value = Extraction.model_validate(SAMPLES[2]).model_dump(mode="json")
    jsonschema.validate(value, strict_schema(Extraction.model_json_schema()))


def test_every_object_is_closed_and_fully_required() -> None:
    strict = strict_schema(Extraction.model_json_schema())
    found = objects(strict)
    assert len(found) == 2  # the root and Skill (in $defs)
    for node in found:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    assert "title" not in repr(strict)
    assert "default" not in repr(strict)
    assert "maxLength" not in repr(strict)


def test_talent_contracts_are_strictable() -> None:
    from talent import contracts

    for model in (
        contracts.JobSkills,
        contracts.ProfileSkills,
        contracts.ParsedCV,
        contracts.Matches,
    ):
        schema = Contract.from_model(model).schema
        strict = strict_schema(schema)
        for node in objects(strict):
            assert node["additionalProperties"] is False


# --- drop_added_nulls --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "x", "b": None, "c": None}, {"a": "x", "c": None}),  # b optional, not nullable
        ({"a": None}, {"a": None}),  # a required: the null stays (the validator will say so)
        ({"a": "x", "n": {"p": None, "q": None}}, {"a": "x", "n": {"q": None}}),
        ({"a": "x", "l": [{"p": None}, {"p": 1}]}, {"a": "x", "l": [{}, {"p": 1}]}),
        ({"a": "x", "extra": None}, {"a": "x", "extra": None}),  # unknown keys untouched
        ([1, None], [1, None]),
    ],
)
def test_drop_added_nulls(value: Any, expected: Any) -> None:
    inner = obj({"p": {"type": "integer"}, "q": {"type": ["integer", "null"]}})
    schema = obj(
        {
            "a": {"type": "string"},
            "b": {"type": "integer"},
            "c": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "n": {"anyOf": [inner, {"type": "null"}]},
            "l": {"type": "array", "items": inner},
        },
        ["a"],
    )
    assert drop_added_nulls(value, schema) == expected


def test_drop_added_nulls_follows_refs() -> None:
    value = {"name": "root", "children": [{"name": "leaf", "children": None}]}
    assert drop_added_nulls(value, RECURSIVE) == {"name": "root", "children": [{"name": "leaf"}]}
