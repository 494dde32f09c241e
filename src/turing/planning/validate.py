"""Check a plan before anything runs, and say every problem with where it is.

Order: shape (only known fields, typed), ids, workflows, inputs against the input contracts,
filters against what the source declares, then the graph: every reference resolves, no
cycles (graphlib), no forward references, references only to single-run steps and to
fields their output contract has, with producer and consumer types compatible.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping
from typing import Any

from turing.compat import object_schema
from turing.compat import problems as compat_problems
from turing.contracts import Contract
from turing.planning.catalog import Catalog, Entry
from turing.planning.model import STEP_ID, ForEach, Plan, PlanError, PlanStep, Ref
from turing.planning.schema import PlanLimits

_STEP_KEYS = ("id", "workflow", "inputs", "for_each", "after")
_SQL = re.compile(
    r"(;\s*(drop|delete|insert|update|alter|create|truncate|grant|attach|pragma|copy)\b)"
    r"|(\b(drop|truncate)\s+table\b)|(\bunion\s+(all\s+)?select\b)|(\bselect\b.+\bfrom\b)"
    r"|(--\s*$)|(/\*)|(\bor\s+1\s*=\s*1\b)|(\bdelete\s+from\b)|(\binsert\s+into\b)",
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_sql(text: str) -> str | None:
    """The SQL-looking fragment of `text`, if any (plans and goals never carry SQL)."""
    found = _SQL.search(text)
    return found.group(0).strip() if found else None


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_plan(
    data: Any,
    catalog: Catalog,
    limits: PlanLimits | None = None,
    *,
    planner: str = "given",
    notes: tuple[str, ...] = (),
) -> Plan:
    """A valid `Plan` from JSON data, or `PlanError` listing every problem found."""
    limits = limits or PlanLimits()
    errors: list[str] = []
    if not isinstance(data, Mapping):
        raise PlanError([f"$: a plan is a JSON object, got {type(data).__name__}"])
    for key in data:
        if key not in ("goal", "steps"):
            errors.append(
                f"$.{key}: unknown field (a plan has only goal and steps; "
                "it never carries SQL or code)"
            )
    goal = data.get("goal", "")
    if not isinstance(goal, str):
        errors.append("$.goal: must be a string")
        goal = str(goal)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlanError([*errors, "$.steps: must be a non-empty list of steps"], plan=data)
    if len(raw_steps) > limits.max_steps:
        errors.append(f"$.steps: {len(raw_steps)} steps, more than the limit of {limits.max_steps}")
    steps: list[PlanStep] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        step = _parse_step(index, raw, catalog, limits, errors)
        if step is None:
            continue
        if step.id in seen:
            errors.append(f"{_where(index, step.id)}: duplicate step id {step.id!r}")
        seen.add(step.id)
        steps.append(step)
    if not errors:
        errors += _graph_problems(steps)
    if not errors:
        errors += _ref_problems(steps, catalog)
    if errors:
        raise PlanError(errors, plan=data)
    return Plan(goal, tuple(steps), planner=planner, notes=notes)


def validate(plan: Plan, catalog: Catalog, limits: PlanLimits | None = None) -> Plan:
    """Re-check a `Plan` object (built in code) exactly as JSON data is checked."""
    return parse_plan(plan.as_dict(), catalog, limits, planner=plan.planner, notes=plan.notes)


def _where(index: int, step_id: Any = None) -> str:
    return f"steps[{index}]" + (f" ({step_id})" if isinstance(step_id, str) and step_id else "")


def _parse_step(
    index: int, raw: Any, catalog: Catalog, limits: PlanLimits, errors: list[str]
) -> PlanStep | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{_where(index)}: a step is a JSON object, got {type(raw).__name__}")
        return None
    sid = raw.get("id")
    where = _where(index, sid)
    before = len(errors)
    for key in raw:
        if key not in _STEP_KEYS:
            errors.append(
                f"{where}: unknown field {key!r} (a step has {', '.join(_STEP_KEYS)}; "
                "plans never carry SQL or code)"
            )
    if not isinstance(sid, str) or not STEP_ID.match(sid):
        errors.append(
            f"{where}.id: {_short(sid)} is not a step id (like s1: lower case, digits, _)"
        )
    name = raw.get("workflow")
    entry = catalog.entries.get(name) if isinstance(name, str) else None
    if entry is None:
        known = ", ".join(catalog.names())
        errors.append(f"{where}.workflow: unknown workflow {_short(name)} (registered: {known})")
    inputs = _parse_inputs(where, raw.get("inputs", {}), entry, errors)
    for_each = _parse_for_each(where, raw.get("for_each"), entry, limits, errors)
    after = raw.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        errors.append(f"{where}.after: must be a list of step ids")
        after = []
    if entry is not None and for_each is None:
        given = set(inputs)
        for req in sorted(entry.input_required - given):
            errors.append(
                f"{where}.inputs: {entry.name} needs input {req!r}; give it as a value or a "
                "reference, or fan out over its source with for_each"
                if entry.has_source
                else f"{where}.inputs: {entry.name} needs input {req!r}; give it as a value "
                "or a reference to an earlier step's output"
            )
    if len(errors) > before or entry is None or not isinstance(sid, str):
        return None
    return PlanStep(sid, entry.name, inputs, for_each, tuple(after))


def _parse_inputs(where: str, raw: Any, entry: Entry | None, errors: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}.inputs: must be an object of input name -> value or reference")
        return {}
    out: dict[str, Any] = {}
    fields = entry.input_fields if entry is not None else {}
    for key, value in raw.items():
        at = f"{where}.inputs.{key}"
        if entry is not None and key not in fields:
            errors.append(
                f"{at}: {entry.name} has no input {key!r} (inputs: {', '.join(fields) or 'none'})"
            )
            continue
        if isinstance(value, Mapping) and set(value) == {"ref"}:
            ref = Ref.parse(str(value["ref"]))
            if ref is None:
                errors.append(
                    f"{at}: reference {_short(value['ref'])} must look like s1.output.field"
                )
                out[key] = value  # given, though wrong: not also reported as missing
                continue
            out[key] = ref
            continue
        if entry is not None:
            for v in Contract(fields[key], name=f"{entry.name}.{key}").violations(value):
                errors.append(f"{at}{v.path[1:]}: {v.message}")
        out[key] = value
    return out


def _parse_for_each(
    where: str, raw: Any, entry: Entry | None, limits: PlanLimits, errors: list[str]
) -> ForEach | None:
    if raw is None:
        return None
    at = f"{where}.for_each"
    if not isinstance(raw, Mapping):
        errors.append(f"{at}: must be an object with filters (and an optional limit)")
        return None
    if entry is not None and not entry.has_source:
        errors.append(f"{at}: {entry.name} has no source to fan out over; run it once instead")
        return None
    for key in raw:
        if key not in ("filters", "limit"):
            errors.append(f"{at}: unknown field {key!r} (for_each has filters and limit)")
    filters = raw.get("filters", {})
    if not isinstance(filters, Mapping):
        errors.append(f"{at}.filters: must be an object of filter name -> value")
        filters = {}
    declared = entry.filters if entry is not None else {}
    for key, value in filters.items():
        flt = declared.get(key)
        if flt is None:
            names = ", ".join(declared) or "none"
            who = entry.name if entry is not None else "the workflow"
            errors.append(f"{at}.filters.{key}: {who} declares no such filter (filters: {names})")
            continue
        for v in Contract(dict(flt.schema), name=f"filter {key}").violations(value):
            errors.append(f"{at}.filters.{key}: {_short(value)}: {v.message}")
        if isinstance(value, str) and (sql := looks_like_sql(value)):
            errors.append(f"{at}.filters.{key}: looks like SQL ({sql!r}); plans never carry SQL")
    limit = raw.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        errors.append(f"{at}.limit: must be a positive integer")
        limit = None
    elif limit is not None and limit > limits.max_fan_out:
        errors.append(
            f"{at}.limit: fan-out of {limit} tasks exceeds the maximum of {limits.max_fan_out}"
        )
    return ForEach(dict(filters), limit)


def _graph_problems(steps: list[PlanStep]) -> list[str]:
    errors: list[str] = []
    order = {s.id: i for i, s in enumerate(steps)}
    graph: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        where = _where(index, step.id)
        deps = []
        for dep in step.depends_on():
            if dep not in order:
                errors.append(
                    f"{where}: refers to {dep!r}, which is not a step of this plan "
                    f"(steps: {', '.join(order)})"
                )
            else:
                deps.append(dep)
        graph[step.id] = deps
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        errors.append(f"cycle: {' -> '.join(cycle)} (a plan must be a DAG)")
    for index, step in enumerate(steps):
        for dep in graph[step.id]:
            if order[dep] >= index:
                what = "itself" if dep == step.id else f"{dep!r}, which comes later"
                errors.append(
                    f"{_where(index, step.id)}: forward reference to {what}; "
                    "a step may only use steps listed before it"
                )
    return errors


def _ref_problems(steps: list[PlanStep], catalog: Catalog) -> list[str]:
    errors: list[str] = []
    by_id = {s.id: s for s in steps}
    for index, step in enumerate(steps):
        consumer = catalog[step.workflow]
        for key, ref in step.refs().items():
            at = f"{_where(index, step.id)}.inputs.{key}"
            producer = by_id[ref.step]
            if producer.for_each is not None:
                errors.append(
                    f"{at}: {ref} refers to a for_each step, which has one output per item; "
                    "reference a step that runs once"
                )
                continue
            schema, missing = _field_at(catalog[producer.workflow].output, ref.path)
            if missing is not None:
                errors.append(f"{at}: {ref}: {producer.workflow} output has no field {missing}")
                continue
            for p in compat_problems(schema, consumer.input_fields[key], f"$.{key}"):
                errors.append(
                    f"{at}: type mismatch: {producer.workflow} {ref} -> {consumer.name} input: {p}"
                )
    return errors


def _field_at(schema: Mapping[str, Any], path: tuple[str, ...]) -> tuple[Any, str | None]:
    """The sub-schema at `path` of an output schema, or the first missing name."""
    node: Mapping[str, Any] = schema
    for depth, part in enumerate(path):
        props: Mapping[str, Any] = object_schema(node).get("properties", {})
        if part not in props:
            have = ", ".join(props) or "none"
            return None, f"{'.'.join(path[: depth + 1])!r} (has: {have})"
        node = props[part]
    return node, None
