"""Small JSON Schema helpers shared by the responders and the faults: `$ref` resolution,
type matching, branch choice and a walk over a value alongside its schema."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema_rs

from turing._json import canonical, json_type

Schema = dict[str, Any]
Path = tuple[str | int, ...]

_MAX_REF_DEPTH = 32


def resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """Follow local `$ref`s (`#/$defs/X`, `#/definitions/X`, `#`) to the schema they name."""
    for _ in range(_MAX_REF_DEPTH):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        ref: str = node["$ref"]
        target: Any = root
        if ref != "#":
            if not ref.startswith("#/"):
                return {k: v for k, v in node.items() if k != "$ref"}
            for raw in ref[2:].split("/"):
                part = raw.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings} if siblings else target
    return node


def types_of(schema: Mapping[str, Any]) -> list[str]:
    """The schema's declared types, or the type its keywords imply."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema:
        return ["array"]
    if "const" in schema:
        return [json_type(schema["const"])]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return sorted({json_type(v) for v in schema["enum"]})
    return []


def type_matches(value: Any, schema: Mapping[str, Any]) -> bool:
    kinds = types_of(schema)
    if not kinds:
        return True
    kind = json_type(value)
    return kind in kinds or (kind == "integer" and "number" in kinds)


def merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Schema:
    """Fold `allOf` members into one schema (properties and required are unioned)."""
    out: Schema = {k: v for k, v in schema.items() if k != "allOf"}
    for member in schema.get("allOf", ()):
        part = resolve(member, root)
        if not isinstance(part, dict):
            continue
        part = merge_all_of(part, root)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                out["properties"] = {**out.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                out["required"] = list(dict.fromkeys([*out.get("required", []), *value]))
            else:
                out.setdefault(key, value)
    return out


def normalize(node: Any, root: Mapping[str, Any]) -> Schema:
    """A usable dict schema: refs followed, allOf folded; `true`/missing means anything."""
    node = resolve(node, root)
    if node is True or node is None:
        return {}
    if node is False:
        return {"not": {}}
    if not isinstance(node, dict):
        return {}
    return merge_all_of(node, root) if "allOf" in node else node


def branches(schema: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            out.extend(schema[key])
    return out


def branch_for(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Schema:
    """The anyOf/oneOf member a value most likely came from (first one it is valid against,
    else the first whose type matches), or the schema itself when it has no branches."""
    options = [normalize(b, root) for b in branches(schema)]
    if not options:
        return dict(schema)
    for option in options:
        if fits(value, option, root):
            return option
    for option in options:
        if type_matches(value, option):
            return option
    return options[0]


def walk(
    value: Any, schema: Any, root: Mapping[str, Any], path: Path = ()
) -> Iterator[tuple[Path, Any, Schema]]:
    """Every node of `value` with the (branch-resolved) schema that describes it."""
    node = normalize(schema, root)
    node = branch_for(value, node, root)
    node = normalize(node, root)
    yield path, value, node
    if isinstance(value, dict):
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            yield from walk(item, sub, root, (*path, key))
    elif isinstance(value, list):
        prefix = node.get("prefixItems") or []
        items = node.get("items", {})
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else items if isinstance(items, dict) else {}
            yield from walk(item, sub, root, (*path, i))


def get_at(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def set_at(value: Any, path: Path, new: Any) -> None:
    target = get_at(value, path[:-1])
    target[path[-1]] = new


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_text), validate_formats=True)


def fits(value: Any, schema: Any, root: Mapping[str, Any] | None = None) -> bool:
    """Is `value` valid against `schema` (with `root`'s definitions available)?"""
    if schema is True or schema == {}:
        return True
    if schema is False:
        return False
    doc = dict(schema)
    if root is not None and root is not schema:
        for defs in ("$defs", "definitions"):
            if defs in root and defs not in doc:
                doc[defs] = root[defs]
    try:
        return bool(_validator(canonical(doc)).is_valid(value))
    except Exception:  # an invalid schema fits nothing
        return False
