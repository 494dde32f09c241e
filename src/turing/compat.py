"""Can a producer's output feed a consumer's input? Checked before a chain (or plan) runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]


def _types(schema: Schema) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        found = {t}
    elif isinstance(t, list):
        found = {str(x) for x in t}
    else:
        found = set()
        for option in schema.get("anyOf") or schema.get("oneOf") or ():
            found |= _types(option)
    return found


def problems(producer: Schema, consumer: Schema, path: str = "$") -> list[str]:
    """Reasons a value valid under `producer` may be rejected by `consumer` (structurally)."""
    have, want = _types(producer), _types(consumer)
    if have and want:
        # an integer is a number; the converse is not true
        rejected = sorted(
            t for t in have if t not in want and not (t == "integer" and "number" in want)
        )
        if rejected == ["null"]:
            return [f"{path}: may be null but the consumer does not accept null"]
        if rejected:
            return [f"{path}: produces {rejected} where {sorted(want)} is expected"]
    out: list[str] = []
    p_props: Mapping[str, Any] = object_schema(producer).get("properties", {})
    c_obj = object_schema(consumer)
    if p_props and c_obj.get("properties"):
        p_required = set(object_schema(producer).get("required", ()))
        for name in c_obj.get("required", ()):
            if name not in p_props:
                out.append(f"{path}.{name}: required but never produced")
            elif name not in p_required:
                out.append(f"{path}.{name}: required but only optionally produced")
        for name, sub in c_obj["properties"].items():
            if name in p_props:
                out += problems(p_props[name], sub, f"{path}.{name}")
    p_items, c_items = _array(producer).get("items"), _array(consumer).get("items")
    if isinstance(p_items, Mapping) and isinstance(c_items, Mapping):
        out += problems(p_items, c_items, f"{path}[]")
    return out


def object_schema(schema: Schema) -> Schema:
    """The object part of a schema (itself, or its first anyOf/oneOf option with properties)."""
    if "properties" in schema:
        return schema
    for option in schema.get("anyOf") or schema.get("oneOf") or ():
        if "properties" in option:
            return dict(option)
    return schema


def _array(schema: Schema) -> Schema:
    if "items" in schema:
        return schema
    for option in schema.get("anyOf") or schema.get("oneOf") or ():
        if "items" in option:
            return dict(option)
    return schema
