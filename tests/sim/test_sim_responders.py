"""SchemaResponder: valid data for a table of schemas; prompt values; loading responders."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from sim.conftest import MakeSim
from turing import Contract
from turing.errors import ConfigError
from turing.sim import SchemaResponder, load_responder
from turing.sim.responders import prompt_values


class Address(BaseModel):
    street: str = Field(min_length=3)
    zip_code: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    full_name: str
    email: str | None = Field(default=None, json_schema_extra={"format": "email"})
    age: int = Field(ge=18, le=99)
    home: Address
    previous: list[Address] = Field(default_factory=list, max_length=2)


SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "bounded_string": {"type": "string", "minLength": 40, "maxLength": 45},
    "integer_range": {"type": "integer", "minimum": -5, "maximum": 5},
    "exclusive": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "draft4_exclusive": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "integer",
        "minimum": 1,
        "maximum": 3,
        "exclusiveMaximum": True,
    },
    "multiple_of": {"type": "integer", "minimum": 7, "maximum": 100, "multipleOf": 7},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "enum": {"enum": ["red", "green", 3, None]},
    "const": {"const": {"fixed": [1, 2]}},
    "formats": {
        "type": "object",
        "properties": {
            f: {"type": "string", "format": f}
            for f in ("email", "date", "date-time", "uri", "uuid", "ipv4", "hostname", "time")
        },
        "required": ["email", "date", "date-time", "uri", "uuid", "ipv4", "hostname", "time"],
    },
    "type_list": {"type": ["integer", "string"]},
    "nullable_union": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "null"}]},
    "one_of": {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]},
    "all_of": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },
    "array_bounds": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 6},
    "unique_enum_items": {
        "type": "array",
        "items": {"enum": ["a", "b", "c"]},
        "minItems": 3,
        "uniqueItems": True,
    },
    "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    "closed_object": {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "string"}},
        "required": ["x"],
        "additionalProperties": False,
    },
    "open_map": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
    "nested": {
        "type": "object",
        "properties": {
            "teams": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "members": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "role": {"enum": ["lead", "dev"]},
                                    "since": {"type": "string", "format": "date"},
                                },
                                "required": ["role", "since"],
                                "additionalProperties": False,
                            },
                        },
                    },
                    "required": ["name", "members"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["teams"],
        "additionalProperties": False,
    },
    "refs": {
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}}}},
        "type": "object",
        "properties": {
            "first": {"$ref": "#/$defs/node"},
            "rest": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        },
        "required": ["first", "rest"],
    },
    "recursive": {
        "$defs": {
            "tree": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/tree"}},
                },
                "required": ["label", "children"],
            }
        },
        "$ref": "#/$defs/tree",
    },
    "pattern": {"type": "string", "pattern": "^[A-Z]{3}-\\d{2}$"},
    "pattern_groups": {"type": "string", "pattern": "^(ab|cd)+_[^xyz]\\w{2,4}\\.?$"},
    "pydantic_person": Person.model_json_schema(),
    "strict_style": {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}]},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    },
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_responder_answers_valid_data(name: str) -> None:
    schema = SCHEMAS[name]
    contract = Contract(schema)
    responder = SchemaResponder()
    for seed in range(25):
        value = responder.respond("m", [], schema, random.Random(seed))
        assert contract.is_valid(value), (name, seed, value)


def test_variety_and_nulls() -> None:
    responder = SchemaResponder()
    schema = SCHEMAS["nullable_union"]
    values = {responder.respond("m", [], schema, random.Random(s)) for s in range(40)}
    assert None in values and len(values) > 3


def test_prompt_values_fill_fitting_properties() -> None:
    messages = [
        {"role": "system", "content": "posting_id: 99"},  # system lines are not data
        {
            "role": "user",
            "content": "Do it.\n\nposting_id: 12\nTitle: Data engineer\nscore: high\n",
        },
    ]
    assert prompt_values(messages) == {"posting_id": 12, "title": "Data engineer", "score": "high"}
    schema = {
        "type": "object",
        "properties": {
            "posting_id": {"type": "integer"},
            "title": {"type": "string"},
            "score": {"type": "integer"},  # "high" does not fit: generated instead
        },
        "required": ["posting_id", "title", "score"],
    }
    value = SchemaResponder().respond("m", messages, schema, random.Random(1))
    assert value["posting_id"] == 12 and value["title"] == "Data engineer"
    assert isinstance(value["score"], int)


def test_without_schema_answers_text() -> None:
    text = SchemaResponder().respond("qwen2.5:7b", [], None, random.Random(0))
    assert isinstance(text, str) and "qwen2.5:7b" in text


def test_table_through_the_server(make_sim: MakeSim) -> None:
    sim = make_sim()
    with httpx.Client(timeout=10) as client:
        for name, schema in SCHEMAS.items():
            body = {
                "model": "qwen2.5:7b",
                "messages": [{"role": "user", "content": f"schema {name}"}],
                "format": schema,
                "stream": False,
            }
            content = client.post(sim.url + "/api/chat", json=body).json()["message"]["content"]
            assert Contract(schema).is_valid(json.loads(content)), name


class Echo:
    def respond(self, model: str, messages: list[dict[str, Any]], schema: Any, rng: Any) -> Any:
        return {"echo": messages[-1]["content"]}


def echo_function(model: str, messages: list[dict[str, Any]], schema: Any, rng: Any) -> Any:
    return "fn:" + model


def test_pluggable_responders(make_sim: MakeSim) -> None:
    sim = make_sim(responder=Echo())
    body = {"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    content = httpx.post(sim.url + "/api/chat", json=body).json()["message"]["content"]
    assert json.loads(content) == {"echo": "hi"}

    assert isinstance(load_responder(f"{__name__}:Echo"), Echo)  # a class
    fn = load_responder(f"{__name__}:echo_function")  # a function
    assert fn.respond("m", [], None, random.Random(0)) == "fn:m"
    assert isinstance(load_responder("turing.sim:SchemaResponder"), SchemaResponder)
    with pytest.raises(ConfigError, match="module:attribute"):
        load_responder("nocolon")
    with pytest.raises(ConfigError, match="cannot import"):
        load_responder("no_such_module_xyz:r")
    with pytest.raises(ConfigError, match="no attribute"):
        load_responder("turing.sim:nope")
