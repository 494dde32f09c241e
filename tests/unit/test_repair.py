"""Deterministic repair: each kind with a malformed sample, the exact fixed value and record."""

from __future__ import annotations

from typing import Any

import pytest

from turing.contracts import Contract
from turing.repair import REPAIR_KINDS, Repair, fit, parse_json, repair

OBJ = Contract(
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["name"],
    },
    name="obj",
)
WRAP = Contract(
    {
        "type": "object",
        "properties": {
            "posting_id": {"type": "integer"},
            "skills": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
            },
        },
        "required": ["posting_id", "skills"],
        "additionalProperties": False,
    },
    name="wrap",
)
INTS = Contract({"type": "array", "items": {"type": "integer"}}, name="ints")
SCALARS = Contract(
    {
        "type": "object",
        "properties": {
            "i": {"type": "integer"},
            "f": {"type": "number"},
            "b": {"type": "boolean"},
            "s": {"type": "string"},
            "e": {"type": "string", "enum": ["Senior", "junior"]},
            "o": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
    },
    name="scalars",
)
STRICT = Contract(
    {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "meta": {
                "type": "object",
                "properties": {"k": {"type": "integer"}},
                "additionalProperties": False,
            },
        },
        "required": ["a"],
        "additionalProperties": False,
    },
    name="strict",
)
OPEN = Contract(
    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, name="open"
)
NESTED = Contract(
    {
        "type": "object",
        "properties": {
            "meta": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]}
        },
        "required": ["meta"],
    },
    name="nested",
)

PASS = {"posting_id": 7, "text": "some posting", "other": 1}

# (contract, raw text, expected value, expected (kind, path) records in order)
REPAIRABLE: list[Any] = [
    # strip_fences
    pytest.param(
        OBJ,
        '```json\n{"name": "a"}\n```',
        {"name": "a"},
        [("strip_fences", "$")],
        id="fence-json",
    ),
    pytest.param(
        OBJ, '```\n{"name": "a"}\n```', {"name": "a"}, [("strip_fences", "$")], id="fence-bare"
    ),
    pytest.param(
        OBJ, '```json\n{"name": "a"}', {"name": "a"}, [("strip_fences", "$")], id="fence-unclosed"
    ),
    pytest.param(
        OBJ,
        'Here it is:\n```json\n{"name": "a"}\n```\nAnything else?',
        {"name": "a"},
        [("strip_fences", "$")],
        id="fence-inside-prose",
    ),
    # strip_prose
    pytest.param(
        OBJ,
        'Here you go: {"name": "a", "n": 2}',
        {"name": "a", "n": 2},
        [("strip_prose", "$")],
        id="prose-before",
    ),
    pytest.param(
        OBJ,
        '{"name": "a"}\nLet me know if you need more [details].',
        {"name": "a"},
        [("strip_prose", "$")],
        id="prose-after",
    ),
    pytest.param(
        OBJ,
        'Sure [note]: the result is {"name": "a"} (as requested)',
        {"name": "a"},
        [("strip_prose", "$")],
        id="brackets-in-prose",
    ),
    pytest.param(
        INTS,
        "The numbers are [1, 2, 3]. Done.",
        [1, 2, 3],
        [("strip_prose", "$")],
        id="prose-array",
    ),
    # json_repair
    pytest.param(
        OBJ,
        '{"name": "a", "n": 1,}',
        {"name": "a", "n": 1},
        [("json_repair", "$")],
        id="trailing-comma-object",
    ),
    pytest.param(INTS, "[1, 2, 3,]", [1, 2, 3], [("json_repair", "$")], id="trailing-comma-array"),
    pytest.param(
        OBJ, "{'name': 'a', 'n': 3}", {"name": "a", "n": 3}, [("json_repair", "$")], id="single-q"
    ),
    pytest.param(
        OBJ,
        '{name: "a", n: 4}',
        {"name": "a", "n": 4},
        [("json_repair", "$")],
        id="unquoted-keys",
    ),
    pytest.param(
        OBJ,
        '{"name": "a", "n": 1',
        {"name": "a", "n": 1},
        [("json_repair", "$")],
        id="truncated-tail",
    ),
    pytest.param(
        OBJ, '{"name": "ab', {"name": "ab"}, [("json_repair", "$")], id="truncated-in-string"
    ),
    pytest.param(
        OBJ,
        "Answer: {'name': 'a'}",
        {"name": "a"},
        [("strip_prose", "$"), ("json_repair", "$")],
        id="prose-then-single-quotes",
    ),
    pytest.param(
        OBJ,
        '```json\n{"name": "a",}\n```',
        {"name": "a"},
        [("strip_fences", "$"), ("json_repair", "$")],
        id="fence-then-trailing-comma",
    ),
    # decode_string
    pytest.param(
        OBJ,
        '"{\\"name\\": \\"a\\"}"',
        {"name": "a"},
        [("decode_string", "$")],
        id="encoded-object",
    ),
    pytest.param(INTS, '"[1, 2]"', [1, 2], [("decode_string", "$")], id="encoded-array"),
    pytest.param(
        NESTED,
        '{"meta": "{\\"k\\": 1}"}',
        {"meta": {"k": 1}},
        [("decode_string", "$.meta")],
        id="encoded-nested-object",
    ),
    # wrap_array
    pytest.param(
        WRAP,
        '[{"name": "python"}, {"name": "sql"}]',
        {"posting_id": 7, "skills": [{"name": "python"}, {"name": "sql"}]},
        [("wrap_array", "$")],
        id="wrap-with-passthrough",
    ),
    pytest.param(
        WRAP,
        '[{"name": "python"}]',
        {"posting_id": 7, "skills": [{"name": "python"}]},
        [("wrap_array", "$")],
        id="wrap-one-element-that-does-not-fit",
    ),
    # unwrap_singleton
    pytest.param(
        OBJ, '[{"name": "a"}]', {"name": "a"}, [("unwrap_singleton", "$")], id="unwrap-singleton"
    ),
    pytest.param(
        OBJ,
        '[{"name": "a", "n": "3"}]',
        {"name": "a", "n": 3},
        [("unwrap_singleton", "$"), ("coerce_scalar", "$.n")],
        id="unwrap-then-coerce",
    ),
    pytest.param(
        WRAP,
        '[{"posting_id": 1, "skills": []}]',
        {"posting_id": 1, "skills": []},
        [("unwrap_singleton", "$")],
        id="unwrap-beats-wrap-when-element-fits",
    ),
    # unwrap_object
    pytest.param(INTS, '{"items": [1, 2]}', [1, 2], [("unwrap_object", "$")], id="unwrap-object"),
    # coerce_scalar
    pytest.param(SCALARS, '{"i": "5"}', {"i": 5}, [("coerce_scalar", "$.i")], id="str-to-int"),
    pytest.param(
        SCALARS, '{"f": "2.5"}', {"f": 2.5}, [("coerce_scalar", "$.f")], id="str-to-number"
    ),
    pytest.param(
        SCALARS, '{"b": "true"}', {"b": True}, [("coerce_scalar", "$.b")], id="str-to-true"
    ),
    pytest.param(
        SCALARS, '{"b": "False"}', {"b": False}, [("coerce_scalar", "$.b")], id="str-to-false"
    ),
    pytest.param(
        SCALARS,
        '{"i": 3.0, "b": "true"}',
        {"i": 3, "b": True},
        [("coerce_scalar", "$.i"), ("coerce_scalar", "$.b")],
        id="integral-float-to-int-while-fitting",
    ),
    pytest.param(
        SCALARS, '{"o": " 7 "}', {"o": 7}, [("coerce_scalar", "$.o")], id="str-to-optional-int"
    ),
    pytest.param(
        SCALARS,
        '{"i": "5", "s": "5"}',
        {"i": 5, "s": "5"},
        [("coerce_scalar", "$.i")],
        id="string-field-keeps-digits",
    ),
    pytest.param(
        INTS, '["1", 2, "3"]', [1, 2, 3], [("coerce_scalar", "$[0]"), ("coerce_scalar", "$[2]")]
    ),
    # coerce_enum
    pytest.param(
        SCALARS, '{"e": "senior"}', {"e": "Senior"}, [("coerce_enum", "$.e")], id="enum-case"
    ),
    pytest.param(
        SCALARS,
        '{"e": " JUNIOR "}',
        {"e": "junior"},
        [("coerce_enum", "$.e")],
        id="enum-case-and-space",
    ),
    # drop_extra
    pytest.param(
        STRICT,
        '{"a": 1, "zzz": 2, "yyy": 3}',
        {"a": 1},
        [("drop_extra", "$.zzz"), ("drop_extra", "$.yyy")],
        id="drop-extra",
    ),
    pytest.param(
        STRICT,
        '{"a": 1, "meta": {"k": 2, "x": 3}}',
        {"a": 1, "meta": {"k": 2}},
        [("drop_extra", "$.meta.x")],
        id="drop-extra-nested",
    ),
    pytest.param(
        OPEN,
        '{"a": "1", "zzz": 2}',
        {"a": 1, "zzz": 2},
        [("coerce_scalar", "$.a")],
        id="extra-kept-when-allowed",
    ),
    # fill_passthrough
    pytest.param(
        WRAP,
        '{"skills": [{"name": "go"}]}',
        {"posting_id": 7, "skills": [{"name": "go"}]},
        [("fill_passthrough", "$.posting_id")],
        id="fill-passthrough",
    ),
]


@pytest.mark.parametrize(("contract", "text", "expected", "records"), REPAIRABLE)
def test_repairable_output(
    contract: Contract, text: str, expected: Any, records: list[tuple[str, str]]
) -> None:
    outcome = repair(text, contract, PASS)
    assert outcome.ok, outcome.violations
    assert outcome.parsed
    assert outcome.violations == ()
    assert outcome.value == expected
    assert type(outcome.value) is type(expected)
    assert [(r.kind, r.path) for r in outcome.repairs] == records
    for record in outcome.repairs:
        assert record.kind in REPAIR_KINDS
        assert record.before != record.after


def test_every_repair_kind_is_covered_by_the_table() -> None:
    covered = {kind for p in REPAIRABLE for kind, _ in p.values[3]}
    assert covered == set(REPAIR_KINDS)


@pytest.mark.parametrize(
    ("contract", "text", "kind", "before", "after"),
    [
        pytest.param(
            OBJ,
            '```json\n{"name": "a"}\n```',
            "strip_fences",
            '```json\n{"name": "a"}\n```',
            '{"name": "a"}',
            id="strip_fences",
        ),
        pytest.param(
            OBJ,
            'Result: {"name": "a"} ok',
            "strip_prose",
            'Result: {"name": "a"} ok',
            '{"name": "a"}',
            id="strip_prose",
        ),
        pytest.param(
            OBJ,
            '{"name": "a",}',
            "json_repair",
            '{"name": "a",}',
            '{"name": "a"}',
            id="json_repair",
        ),
        pytest.param(INTS, '"[1, 2]"', "decode_string", '"[1, 2]"', "[1, 2]", id="decode_string"),
        pytest.param(
            WRAP,
            '[{"name": "x"}]',
            "wrap_array",
            '[{"name": "x"}]',
            '{"posting_id": 7, "skills": "[…]"}',
            id="wrap_array",
        ),
        pytest.param(
            OBJ,
            '[{"name": "a"}]',
            "unwrap_singleton",
            '[{"name": "a"}]',
            '{"name": "a"}',
            id="unwrap_singleton",
        ),
        pytest.param(
            INTS, '{"xs": [1]}', "unwrap_object", '{"xs": [1]}', "[1]", id="unwrap_object"
        ),
        pytest.param(SCALARS, '{"i": "5"}', "coerce_scalar", '"5"', "5", id="coerce_scalar"),
        pytest.param(
            SCALARS, '{"e": "senior"}', "coerce_enum", '"senior"', '"Senior"', id="coerce_enum"
        ),
        pytest.param(STRICT, '{"a": 1, "z": [2]}', "drop_extra", "[2]", "null", id="drop_extra"),
        pytest.param(
            WRAP, '{"skills": []}', "fill_passthrough", "null", "7", id="fill_passthrough"
        ),
    ],
)
def test_repair_records_before_and_after(
    contract: Contract, text: str, kind: str, before: str, after: str
) -> None:
    outcome = repair(text, contract, PASS)
    assert outcome.ok
    [record] = [r for r in outcome.repairs if r.kind == kind]
    assert (record.before, record.after) == (before, after)
    assert record.as_dict() == {
        "kind": kind,
        "path": record.path,
        "before": before,
        "after": after,
    }


@pytest.mark.parametrize(
    ("contract", "text", "value", "records", "violation"),
    [
        pytest.param(
            OBJ,
            '[{"nope": 1}]',
            [{"nope": 1}],
            [],
            ("$", "type"),
            id="singleton-whose-element-does-not-fit-stays-a-list",
        ),
        pytest.param(
            OBJ,
            '[{"name": "a"}, {"name": "b"}]',
            [{"name": "a"}, {"name": "b"}],
            [],
            ("$", "type"),
            id="two-elements-are-not-unwrapped",
        ),
        pytest.param(
            INTS,
            '{"a": [1], "b": [2]}',
            {"a": [1], "b": [2]},
            [],
            ("$", "type"),
            id="ambiguous-object-not-unwrapped",
        ),
        pytest.param(
            SCALARS,
            '{"i": "5.5"}',
            {"i": "5.5"},
            [],
            ("$.i", "type"),
            id="non-integral-string-not-coerced-to-int",
        ),
        pytest.param(
            SCALARS, '{"s": 5}', {"s": 5}, [], ("$.s", "type"), id="number-not-stringified"
        ),
        pytest.param(
            SCALARS, '{"b": "yes"}', {"b": "yes"}, [], ("$.b", "type"), id="yes-is-not-true"
        ),
        pytest.param(
            SCALARS, '{"e": "mid"}', {"e": "mid"}, [], ("$.e", "enum"), id="enum-no-guessing"
        ),
        pytest.param(
            WRAP,
            '{"skills": [], "posting_id": "abc"}',
            {"skills": [], "posting_id": "abc"},
            [],
            ("$.posting_id", "type"),
            id="present-field-not-overwritten-from-input",
        ),
    ],
)
def test_repair_does_not_guess(
    contract: Contract,
    text: str,
    value: Any,
    records: list[tuple[str, str]],
    violation: tuple[str, str],
) -> None:
    outcome = repair(text, contract, PASS)
    assert outcome.parsed
    assert not outcome.ok
    assert outcome.value == value
    assert [(r.kind, r.path) for r in outcome.repairs] == records
    assert [(v.path, v.rule) for v in outcome.violations] == [violation]


def test_wrap_array_without_passthrough_leaves_required_field_missing() -> None:
    outcome = repair('[{"name": "x"}]', WRAP)
    assert outcome.value == {"skills": [{"name": "x"}]}
    assert [r.kind for r in outcome.repairs] == ["wrap_array"]
    assert [(v.path, v.rule) for v in outcome.violations] == [("$", "required")]


def test_wrap_array_copies_only_declared_passthrough_fields() -> None:
    outcome = repair("[]", WRAP, {"posting_id": 3, "text": "x", "other": 1})
    assert outcome.value == {"posting_id": 3, "skills": []}


def test_fill_passthrough_needs_a_fitting_input_value() -> None:
    outcome = repair('{"skills": []}', WRAP, {"posting_id": "not-an-int"})
    assert outcome.value == {"skills": []}
    assert outcome.repairs == ()
    assert [(v.path, v.rule) for v in outcome.violations] == [("$", "required")]


def test_fill_passthrough_only_fills_required_fields() -> None:
    optional = Contract(
        {
            "type": "object",
            "properties": {"posting_id": {"type": "integer"}, "n": {"type": "integer"}},
            "required": ["n"],
        }
    )
    outcome = repair('{"n": "1"}', optional, {"posting_id": 9})
    assert outcome.value == {"n": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty response", id="empty"),
        pytest.param("  \n\t ", "empty response", id="whitespace"),
        pytest.param("I cannot help with that.", "no JSON object or array found", id="prose"),
        pytest.param("See [note] and {braces}", "no JSON object or array found", id="brackets"),
        pytest.param("```\n```", "no JSON object or array found", id="empty-fence"),
    ],
)
def test_unparseable_text_is_one_clear_violation(text: str, message: str) -> None:
    outcome = repair(text, OBJ, PASS)
    assert not outcome.parsed
    assert not outcome.ok
    assert outcome.value is None
    [violation] = outcome.violations
    assert (violation.path, violation.rule) == ("$", "json")
    assert message in violation.message
    assert violation.value.startswith('"')


@pytest.mark.parametrize(
    ("contract", "text"),
    [
        (OBJ, '{"name": "a", "n": 1}'),
        (OBJ, '  {"name": "a"}\n'),
        (INTS, "[1, 2]"),
        (WRAP, '{"posting_id": 1, "skills": [{"name": "x"}]}'),
        (SCALARS, '{"s": "5", "o": null}'),
        (SCALARS, '{"i": 3.0}'),  # an integral float is a JSON Schema integer
    ],
)
def test_valid_output_produces_no_repairs(contract: Contract, text: str) -> None:
    outcome = repair(text, contract, PASS)
    assert outcome.ok
    assert outcome.repairs == ()


def test_fit_is_a_no_op_on_valid_values() -> None:
    value = {"name": "a"}
    repairs: list[Repair] = []
    assert fit(value, OBJ, PASS, repairs) is value
    assert repairs == []


def test_parse_json_records_textual_fixes_only() -> None:
    repairs: list[Repair] = []
    assert parse_json('```json\n["5"]\n```', repairs) == ["5"]
    assert [r.kind for r in repairs] == ["strip_fences"]


def test_long_before_values_are_shortened_in_records() -> None:
    text = "Here is the JSON you asked for: " + '{"name": "' + "x" * 1000 + '"}'
    outcome = repair(text, OBJ)
    assert outcome.ok
    [record] = outcome.repairs
    assert record.kind == "strip_prose"
    assert len(record.before) == 200
    assert record.before.endswith("…")


def test_citation_before_the_answer_is_not_taken_for_it() -> None:
    repairs: list[Repair] = []
    value = parse_json('As noted in [1]: {"posting_id": 7, "skills": []}', repairs)
    assert value == {"posting_id": 7, "skills": []}
    assert [r.kind for r in repairs] == ["strip_prose"]
