"""Plan validation: every invalid plan is rejected before anything runs, with an error that
says where (`steps[i] (id)...`), and valid plans come through intact.

The catalog is a small registry of test workflows (one with a filtered source, three that
run once) plus the talent workflows for the talent-shaped plans.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import jsonschema_rs
import pytest
from pydantic import BaseModel, Field

from talent.workflows import WORKFLOWS as TALENT_WORKFLOWS
from turing import Registry, ScriptStep, Sink, Source, SourceFilter, Workflow
from turing.planning import (
    Catalog,
    ForEach,
    Plan,
    PlanError,
    PlanLimits,
    PlanStep,
    Ref,
    parse_plan,
    plan_schema,
    validate,
)


# ------------------------------------------------------------------ test workflows
class ItemIn(BaseModel):
    item_id: int
    text: str


class WordsOut(BaseModel):
    item_id: int
    words: int


class MakeIn(BaseModel):
    n: int = Field(ge=1, le=10)


class Detail(BaseModel):
    label: str
    size: int


class MakeOut(BaseModel):
    item_id: int
    text: str
    n: int
    detail: Detail


class TextIn(BaseModel):
    text: str


class TextOut(BaseModel):
    text: str


class ScaleIn(BaseModel):
    words: int


class ScaleOut(BaseModel):
    value: float


def _noop(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _workflows() -> list[Workflow]:
    count = Workflow(
        "count_words",
        description="Count the words of every item.",
        input=ItemIn,
        output=WordsOut,
        subject_key="item_id",
        source=Source(
            sql="SELECT item_id, text, label, added_at FROM items",
            filters={
                "id_from": SourceFilter("item_id", ">=", "integer", "Items from this id."),
                "label": SourceFilter("label", "=", "string", "Items with this label."),
                "added_since": SourceFilter("added_at", ">=", "date", "Items added since."),
            },
        ),
        sink=Sink.sql("INSERT INTO results (item_id, words) VALUES (:item_id, :words)"),
        steps=[ScriptStep("count", run=_noop)],
    )
    make = Workflow(
        "make_text",
        description="Make a text of n words.",
        input=MakeIn,
        output=MakeOut,
        steps=[ScriptStep("make", run=_noop)],
    )
    shout = Workflow(
        "shout",
        description="Upper-case a text.",
        input=TextIn,
        output=TextOut,
        steps=[ScriptStep("shout", run=_noop)],
    )
    scale = Workflow(
        "scale",
        description="Scale a word count.",
        input=ScaleIn,
        output=ScaleOut,
        steps=[ScriptStep("scale", run=_noop)],
    )
    return [count, make, shout, scale]


CATALOG = Catalog.from_registry(Registry(_workflows()))
TALENT = Catalog.from_registry(Registry(TALENT_WORKFLOWS))


def step(sid: str, workflow: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sid, "workflow": workflow, "inputs": kw.pop("inputs", {})}
    out["after"] = kw.pop("after", [])
    out.update(kw)
    return out


def plan(*steps: dict[str, Any], goal: str = "a goal") -> dict[str, Any]:
    return {"goal": goal, "steps": list(steps)}


def ref(text: str) -> dict[str, str]:
    return {"ref": text}


def errors_of(data: Any, catalog: Catalog = CATALOG, limits: PlanLimits | None = None) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(data, catalog, limits)
    assert caught.value.errors, "a PlanError lists its problems"
    assert all(e in str(caught.value) for e in caught.value.errors)
    return caught.value.errors


def one_error(data: Any, catalog: Catalog = CATALOG, limits: PlanLimits | None = None) -> str:
    errors = errors_of(data, catalog, limits)
    assert len(errors) == 1, errors
    return errors[0]


# A valid chain of single-run steps: make_text -> shout (text), make_text -> scale (n as words).
VALID_ONCE = plan(
    step("s1", "make_text", inputs={"n": 3}),
    step("s2", "shout", inputs={"text": ref("s1.output.text")}),
    step("s3", "scale", inputs={"words": ref("s1.output.n")}, after=["s2"]),
    step("s4", "shout", inputs={"text": ref("s1.output.detail.label")}),
)
VALID_FOR_EACH = plan(
    step("s1", "count_words", for_each={"filters": {"id_from": 3, "label": "news"}, "limit": 50}),
    step("s2", "make_text", inputs={"n": 2}, after=["s1"]),
)
TALENT_SEED = plan(
    step("s1", "job_skills", for_each={"filters": {"fetched_since": "2026-11-24"}}),
    step(
        "s2",
        "match_candidates",
        inputs={"k": 5},
        after=["s1"],
        for_each={"filters": {"fetched_since": "2026-11-24"}},
    ),
    goal="Extract skills from all jobs fetched today, then match top 5 candidates for each role",
)


# ------------------------------------------------------------------------ valid plans
def test_refs_between_single_run_steps_are_accepted() -> None:
    parsed = parse_plan(VALID_ONCE, CATALOG)
    assert [s.id for s in parsed.steps] == ["s1", "s2", "s3", "s4"]
    assert [s.workflow for s in parsed.steps] == ["make_text", "shout", "scale", "shout"]
    s2, s3, s4 = parsed.step("s2"), parsed.step("s3"), parsed.step("s4")
    assert s2.inputs == {"text": Ref("s1", ("text",))}
    assert s2.refs() == {"text": Ref("s1", ("text",))} and s2.literals() == {}
    assert s3.depends_on() == ["s2", "s1"]  # explicit after first, then references
    assert s4.inputs["text"] == Ref("s1", ("detail", "label"))
    assert parsed.step("s1").literals() == {"n": 3} and parsed.step("s1").for_each is None
    assert parsed.goal == "a goal" and parsed.planner == "given"


def test_for_each_plan_is_accepted_with_filters_and_limit() -> None:
    parsed = parse_plan(VALID_FOR_EACH, CATALOG)
    s1 = parsed.step("s1")
    assert s1.for_each == ForEach({"id_from": 3, "label": "news"}, 50)
    assert parsed.step("s2").depends_on() == ["s1"]


def test_talent_seed_plan_is_accepted() -> None:
    parsed = parse_plan(TALENT_SEED, TALENT)
    assert [(s.id, s.workflow) for s in parsed.steps] == [
        ("s1", "job_skills"),
        ("s2", "match_candidates"),
    ]
    assert parsed.step("s2").literals() == {"k": 5}


@pytest.mark.parametrize("data", [VALID_ONCE, VALID_FOR_EACH])
def test_as_dict_round_trips_through_parse_plan(data: dict[str, Any]) -> None:
    parsed = parse_plan(data, CATALOG, planner="offline", notes=("n1",))
    again = parse_plan(parsed.as_dict(), CATALOG, planner="offline", notes=("n1",))
    assert again == parsed
    assert again.as_dict() == parsed.as_dict()
    # and validate() re-checks a Plan object the same way
    assert validate(parsed, CATALOG) == parsed


def test_inputs_and_after_may_be_omitted() -> None:
    parsed = parse_plan(
        {"goal": "g", "steps": [{"id": "s1", "workflow": "make_text", "inputs": {"n": 1}}]},
        CATALOG,
    )
    assert parsed.steps[0].after == ()
    parsed = parse_plan(
        {"goal": "g", "steps": [{"id": "s1", "workflow": "count_words", "for_each": {}}]},
        CATALOG,
    )
    assert parsed.steps[0].for_each == ForEach({}, None)


# ----------------------------------------------------------------------- shape, ids
def test_unknown_workflow_names_the_step_and_the_registered_ones() -> None:
    error = one_error(plan(step("s1", "bake_cake")))
    assert error.startswith("steps[0] (s1).workflow: unknown workflow 'bake_cake'")
    for name in ("count_words", "make_text", "shout", "scale"):
        assert name in error


def test_every_problem_is_reported_not_just_the_first() -> None:
    errors = errors_of(
        plan(step("s1", "bake_cake"), step("s2", "make_text", inputs={"n": 0}), step("S 3", "x"))
    )
    assert any(e.startswith("steps[0] (s1).workflow") for e in errors)
    assert any(e.startswith("steps[1] (s2).inputs.n") for e in errors)
    assert any(e.startswith("steps[2] (S 3).id") for e in errors)
    assert any(e.startswith("steps[2] (S 3).workflow") for e in errors)


def test_duplicate_ids() -> None:
    error = one_error(
        plan(step("s1", "make_text", inputs={"n": 1}), step("s1", "make_text", inputs={"n": 2}))
    )
    assert error == "steps[1] (s1): duplicate step id 's1'"


@pytest.mark.parametrize(
    "data",
    [None, [], "steps", {"goal": "g"}, {"goal": "g", "steps": []}, {"goal": "g", "steps": {}}],
)
def test_not_a_plan(data: Any) -> None:
    error = errors_of(data)[-1]
    assert error.startswith("$")


def test_a_step_that_is_not_an_object() -> None:
    assert one_error(plan("s1")) == "steps[0]: a step is a JSON object, got str"  # type: ignore[arg-type]


# -------------------------------------------------------------------------- graph
def test_cycle_is_shown() -> None:
    errors = errors_of(
        plan(
            step("s1", "make_text", inputs={"n": 1}, after=["s3"]),
            step("s2", "make_text", inputs={"n": 1}, after=["s1"]),
            step("s3", "make_text", inputs={"n": 1}, after=["s2"]),
        )
    )
    [cycle] = [e for e in errors if e.startswith("cycle:")]
    shown = cycle.removeprefix("cycle: ").split(" (")[0].split(" -> ")
    assert shown[0] == shown[-1] and sorted(shown[:-1]) == ["s1", "s2", "s3"]
    # consecutive ids in the message are edges of the plan, all read the same way
    # (step -> the step it waits for, or producer -> consumer)
    waits_for = {("s1", "s3"), ("s2", "s1"), ("s3", "s2")}
    feeds = {(b, a) for a, b in waits_for}
    pairs = set(itertools.pairwise(shown))
    assert pairs in (waits_for, feeds), shown
    assert "DAG" in cycle
    # the step that points forward is named too
    assert any(e.startswith("steps[0] (s1): forward reference to 's3'") for e in errors)


def test_self_reference_is_a_cycle() -> None:
    errors = errors_of(plan(step("s1", "make_text", inputs={"n": 1}, after=["s1"])))
    assert "cycle: s1 -> s1 (a plan must be a DAG)" in errors
    assert any("forward reference to itself" in e for e in errors)


def test_forward_reference_without_a_cycle_is_rejected() -> None:
    # s1 uses s2's output; s2 comes later. The graph is a DAG, yet the plan is rejected.
    error = one_error(
        plan(
            step("s1", "shout", inputs={"text": ref("s2.output.text")}),
            step("s2", "make_text", inputs={"n": 1}),
        )
    )
    assert error.startswith("steps[0] (s1): forward reference to 's2', which comes later")
    assert "only use steps listed before it" in error


def test_forward_after_without_a_cycle_is_rejected() -> None:
    error = one_error(
        plan(
            step("s1", "make_text", inputs={"n": 1}, after=["s2"]),
            step("s2", "make_text", inputs={"n": 2}),
        )
    )
    assert error.startswith("steps[0] (s1): forward reference to 's2', which comes later")


@pytest.mark.parametrize(
    "bad",
    [
        {"inputs": {"text": ref("s9.output.text")}},
        {"inputs": {"text": "hi"}, "after": ["s9"]},
    ],
)
def test_dangling_reference(bad: dict[str, Any]) -> None:
    error = one_error(plan(step("s1", "make_text", inputs={"n": 1}), step("s2", "shout", **bad)))
    assert (
        error == "steps[1] (s2): refers to 's9', which is not a step of this plan (steps: s1, s2)"
    )


def test_reference_to_a_missing_output_field() -> None:
    error = one_error(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "shout", inputs={"text": ref("s1.output.nope")}),
        )
    )
    assert error.startswith("steps[1] (s2).inputs.text: s1.output.nope: make_text output")
    assert "no field 'nope'" in error
    assert "item_id, text, n, detail" in error  # what it does have


def test_reference_to_a_missing_nested_field() -> None:
    error = one_error(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "shout", inputs={"text": ref("s1.output.detail.colour")}),
        )
    )
    assert "no field 'detail.colour' (has: label, size)" in error


def test_type_mismatch_between_output_and_input() -> None:
    error = one_error(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "shout", inputs={"text": ref("s1.output.n")}),
        )
    )
    assert error.startswith("steps[1] (s2).inputs.text: type mismatch: make_text s1.output.n")
    assert "shout input" in error
    assert "integer" in error and "string" in error


def test_whole_output_object_into_a_string_input_is_a_mismatch() -> None:
    error = one_error(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "shout", inputs={"text": ref("s1.output.detail")}),
        )
    )
    assert "type mismatch" in error and "object" in error


def test_integer_output_fits_a_number_input() -> None:
    parse_plan(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "scale", inputs={"words": ref("s1.output.detail.size")}),
        ),
        CATALOG,
    )


def test_reference_to_a_for_each_step() -> None:
    error = one_error(
        plan(
            step("s1", "count_words", for_each={"filters": {}}),
            step("s2", "scale", inputs={"words": ref("s1.output.words")}),
        )
    )
    assert error.startswith("steps[1] (s2).inputs.words: s1.output.words refers to a for_each step")
    assert "reference a step that runs once" in error


@pytest.mark.parametrize("text", ["s1.text", "s1.output.", "S1.output.x", "DROP TABLE items"])
def test_malformed_reference(text: str) -> None:
    errors = errors_of(
        plan(
            step("s1", "make_text", inputs={"n": 1}),
            step("s2", "shout", inputs={"text": ref(text)}),
        )
    )
    assert (
        errors[0] == f"steps[1] (s2).inputs.text: reference {text!r} must look like s1.output.field"
    )
    assert errors[1:] == []  # reported once: not also as a missing input


# ------------------------------------------------------------------------- limits
def test_fan_out_limit_above_max() -> None:
    limits = PlanLimits(max_fan_out=100)
    data = plan(step("s1", "count_words", for_each={"filters": {}, "limit": 101}))
    error = one_error(data, limits=limits)
    assert error == (
        "steps[0] (s1).for_each.limit: fan-out of 101 tasks exceeds the maximum of 100"
    )
    data["steps"][0]["for_each"]["limit"] = 100
    assert parse_plan(data, CATALOG, limits).steps[0].for_each == ForEach({}, 100)


@pytest.mark.parametrize("limit", [0, -3, "10", 2.5, True])
def test_fan_out_limit_must_be_a_positive_integer(limit: Any) -> None:
    error = one_error(plan(step("s1", "count_words", for_each={"filters": {}, "limit": limit})))
    assert error == "steps[0] (s1).for_each.limit: must be a positive integer"


def test_too_many_steps() -> None:
    steps = [step(f"s{i}", "make_text", inputs={"n": 1}) for i in range(1, 4)]
    error = one_error(plan(*steps), limits=PlanLimits(max_steps=2))
    assert error == "$.steps: 3 steps, more than the limit of 2"
    parse_plan(plan(*steps), CATALOG, PlanLimits(max_steps=3))


def test_for_each_on_a_workflow_without_a_source() -> None:
    error = one_error(plan(step("s1", "make_text", inputs={"n": 1}, for_each={"filters": {}})))
    assert error.startswith("steps[0] (s1).for_each: make_text has no source to fan out over")


# ------------------------------------------------------------------ SQL smuggling
def test_sql_key_at_top_level() -> None:
    data = copy.deepcopy(VALID_ONCE) | {"sql": "DROP TABLE items"}
    error = one_error(data)
    assert error.startswith("$.sql: unknown field")
    assert "never carries SQL" in error


def test_sql_key_in_a_step() -> None:
    data = plan(step("s1", "make_text", inputs={"n": 1}, sql="DELETE FROM items"))
    error = one_error(data)
    assert error.startswith("steps[0] (s1): unknown field 'sql'")
    assert "never carry SQL" in error


@pytest.mark.parametrize("key", ["sql", "where", "query"])
def test_extra_key_in_for_each(key: str) -> None:
    data = plan(step("s1", "count_words", for_each={"filters": {}, key: "1=1; DROP TABLE items"}))
    assert one_error(data) == (
        f"steps[0] (s1).for_each: unknown field {key!r} (for_each has filters and limit)"
    )


def test_sql_in_a_date_filter_value() -> None:
    value = "2026-11-24'; DROP TABLE postings; --"
    data = plan(step("s1", "job_skills", for_each={"filters": {"fetched_since": value}}))
    errors = errors_of(data, TALENT)
    assert errors and all(
        e.startswith("steps[0] (s1).for_each.filters.fetched_since") for e in errors
    )
    assert any("looks like SQL" in e and "plans never carry SQL" in e for e in errors)
    assert any("date" in e for e in errors if "looks like SQL" not in e)  # not a date either


@pytest.mark.parametrize(
    "value",
    ["news'; DROP TABLE items; --", "x' OR 1=1", "a' UNION SELECT password FROM users"],
)
def test_sql_in_a_string_filter_value(value: str) -> None:
    data = plan(step("s1", "count_words", for_each={"filters": {"label": value}}))
    error = one_error(data)
    assert error.startswith("steps[0] (s1).for_each.filters.label: looks like SQL")


def test_plain_string_filter_value_is_fine() -> None:
    data = plan(step("s1", "count_words", for_each={"filters": {"label": "rock 'n' roll"}}))
    assert parse_plan(data, CATALOG).steps[0].for_each == ForEach({"label": "rock 'n' roll"})


def test_sql_in_the_workflow_name() -> None:
    data = plan(step("s1", "job_skills; DROP TABLE postings", for_each={"filters": {}}))
    errors = errors_of(data, TALENT)
    assert any(
        e.startswith("steps[0] (s1).workflow: unknown workflow 'job_skills; DROP TABLE postings'")
        for e in errors
    )


def test_undeclared_filter_name() -> None:
    data = plan(
        step("s1", "job_skills", for_each={"filters": {"posting_id > 0 OR 1": 1, "title": "x"}})
    )
    errors = errors_of(data, TALENT)
    assert len(errors) == 2
    assert errors[0].startswith(
        "steps[0] (s1).for_each.filters.posting_id > 0 OR 1: job_skills declares no such filter"
    )
    assert "(filters: fetched_since, fetched_before)" in errors[0]
    assert errors[1].startswith("steps[0] (s1).for_each.filters.title: job_skills declares no")


def test_filter_value_of_the_wrong_type() -> None:
    data = plan(step("s1", "count_words", for_each={"filters": {"id_from": "3"}}))
    assert one_error(data).startswith("steps[0] (s1).for_each.filters.id_from: '3'")


def test_unknown_input_name() -> None:
    data = plan(step("s1", "make_text", inputs={"n": 1, "sql": "DROP TABLE items"}))
    error = one_error(data)
    assert error == "steps[0] (s1).inputs.sql: make_text has no input 'sql' (inputs: n)"


# ------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    ("value", "words"),
    [("three", "integer"), (3.5, "integer"), (None, "integer"), (0, "minimum"), (11, "maximum")],
)
def test_literal_input_checked_against_the_contract(value: Any, words: str) -> None:
    error = one_error(plan(step("s1", "make_text", inputs={"n": value})))
    assert error.startswith("steps[0] (s1).inputs.n: ")
    message = error.lower()
    assert (
        words in message
        or (words == "minimum" and "less than" in message)
        or (words == "maximum" and "greater than" in message)
    ), error


def test_literal_k_out_of_range_on_talent() -> None:
    data = copy.deepcopy(TALENT_SEED)
    data["steps"][1]["inputs"]["k"] = 500
    error = one_error(data, TALENT)
    assert error.startswith("steps[1] (s2).inputs.k: ")
    assert "500" in error


def test_required_input_missing_on_a_single_run_step() -> None:
    error = one_error(plan(step("s1", "shout")))
    assert error.startswith("steps[0] (s1).inputs: shout needs input 'text'")


def test_required_input_missing_on_a_source_workflow_run_once() -> None:
    errors = errors_of(plan(step("s1", "count_words", inputs={"item_id": 1})))
    assert errors == [
        "steps[0] (s1).inputs: count_words needs input 'text'; give it as a value or a "
        "reference, or fan out over its source with for_each"
    ]


def test_for_each_step_needs_no_inputs() -> None:
    parse_plan(plan(step("s1", "count_words", for_each={"filters": {}})), CATALOG)


# ------------------------------------------------------------------------ validate()
def test_validate_rejects_a_plan_object_built_in_code() -> None:
    bad = Plan(
        "g",
        (
            PlanStep("s1", "shout", {"text": Ref("s2", ("text",))}),
            PlanStep("s2", "make_text", {"n": 1}),
        ),
    )
    with pytest.raises(PlanError) as caught:
        validate(bad, CATALOG)
    assert any("forward reference" in e for e in caught.value.errors)


# ------------------------------------------------------------------------ the schema
def _validator(catalog: Catalog, limits: PlanLimits | None = None) -> Any:
    schema = plan_schema(catalog, limits)
    assert jsonschema_rs.meta.is_valid(schema)
    return jsonschema_rs.validator_for(schema, validate_formats=True)


@pytest.mark.parametrize(
    ("catalog", "data"),
    [(CATALOG, VALID_ONCE), (CATALOG, VALID_FOR_EACH), (TALENT, TALENT_SEED)],
)
def test_schema_accepts_valid_plans(catalog: Catalog, data: dict[str, Any]) -> None:
    validator = _validator(catalog)
    assert validator.is_valid(data)
    assert validator.is_valid(parse_plan(data, catalog).as_dict())


def test_schema_names_every_workflow() -> None:
    schema = plan_schema(TALENT)
    branches = schema["properties"]["steps"]["items"]["anyOf"]
    names = [b["properties"]["workflow"]["enum"] for b in branches]
    assert names == [[n] for n in TALENT.names()]
    by_name = {b["properties"]["workflow"]["enum"][0]: b for b in branches}
    filters = by_name["job_skills"]["properties"]["for_each"]["properties"]["filters"]
    assert set(filters["properties"]) == {"fetched_since", "fetched_before"}
    assert "for_each" not in by_name["profile_import"]["properties"]  # runs once only


def _mutations() -> list[tuple[str, Catalog, dict[str, Any]]]:
    out: list[tuple[str, Catalog, dict[str, Any]]] = []

    def add(name: str, catalog: Catalog, base: dict[str, Any], change: Any) -> None:
        data = copy.deepcopy(base)
        change(data)
        out.append((name, catalog, data))

    add("unknown workflow", TALENT, TALENT_SEED, lambda d: d["steps"][0].update(workflow="bake"))
    add(
        "sql in the workflow name",
        TALENT,
        TALENT_SEED,
        lambda d: d["steps"][0].update(workflow="job_skills; DROP TABLE postings"),
    )
    add("sql key at the top", TALENT, TALENT_SEED, lambda d: d.update(sql="DROP TABLE postings"))
    add("sql key in a step", TALENT, TALENT_SEED, lambda d: d["steps"][0].update(sql="DELETE"))
    add(
        "undeclared filter",
        TALENT,
        TALENT_SEED,
        lambda d: d["steps"][0]["for_each"]["filters"].update(title="x"),
    )
    add(
        "sql in a date filter",
        TALENT,
        TALENT_SEED,
        lambda d: d["steps"][0]["for_each"]["filters"].update(
            fetched_since="2026-11-24'; DROP TABLE postings; --"
        ),
    )
    add(
        "fan-out above the maximum",
        TALENT,
        TALENT_SEED,
        lambda d: d["steps"][0]["for_each"].update(limit=PlanLimits().max_fan_out + 1),
    )
    add("k out of range", TALENT, TALENT_SEED, lambda d: d["steps"][1]["inputs"].update(k=500))
    add("input not declared", CATALOG, VALID_ONCE, lambda d: d["steps"][0]["inputs"].update(m=1))
    add(
        "literal of the wrong type",
        CATALOG,
        VALID_ONCE,
        lambda d: d["steps"][0]["inputs"].update(n="three"),
    )
    add(
        "for_each on a workflow without a source",
        CATALOG,
        VALID_ONCE,
        lambda d: d["steps"][0].update(for_each={"filters": {}}),
    )
    add("bad step id", CATALOG, VALID_ONCE, lambda d: d["steps"][0].update(id="Step 1"))
    add("no steps", CATALOG, VALID_ONCE, lambda d: d.update(steps=[]))
    return out


@pytest.mark.parametrize(
    ("catalog", "data"), [(c, d) for _, c, d in _mutations()], ids=[n for n, _, _ in _mutations()]
)
def test_schema_rejects_what_validation_rejects(catalog: Catalog, data: dict[str, Any]) -> None:
    assert not _validator(catalog).is_valid(data)
    with pytest.raises(PlanError):
        parse_plan(data, catalog)


def test_schema_step_limit() -> None:
    steps = [step(f"s{i}", "make_text", inputs={"n": 1}) for i in range(1, 4)]
    assert _validator(CATALOG, PlanLimits(max_steps=3)).is_valid(plan(*steps))
    assert not _validator(CATALOG, PlanLimits(max_steps=2)).is_valid(plan(*steps))
