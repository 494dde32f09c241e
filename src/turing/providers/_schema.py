"""JSON Schema for providers: OpenAI's strict subset, and undoing what that subset adds.

`strict_schema` rewrites a contract's schema into what OpenAI's strict structured outputs
accept: every object lists all its properties in `required` and has
`additionalProperties: false`; a property that was optional becomes nullable (so the model
may still leave it out, by answering null); keywords strict mode rejects are dropped
(`default`, `title`, `minLength`, `uniqueItems`, unsupported `format`s, ...), `oneOf`
becomes `anyOf` and single-branch `allOf` is merged. Dropping a keyword loosens only what
the model is held to: Turing validates every answer against the full contract anyway.

A schema strict mode cannot express at all (a free-form object or map, a value of any
type, a non-object root) raises `NotStrictable`; the provider then sends the schema as a
non-strict hint instead.

`drop_added_nulls` is the inverse for answers: it removes the nulls strict mode made the
model write for optional properties the contract does not allow to be null.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

# Keywords OpenAI's strict mode accepts (structured outputs guide, "Supported schemas").
KEPT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "description",
        "$ref",
        "$defs",
        "definitions",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class NotStrictable(ValueError):
    """The schema has a part OpenAI's strict mode cannot express."""


def schema_name(name: str) -> str:
    """A response-format / tool name: only [a-zA-Z0-9_-], at most 64 characters."""
    return _NAME.sub("_", name)[:64] or "output"


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI strict-mode version of `schema` (a new dict); raises `NotStrictable`."""
    root = copy.deepcopy(dict(schema))
    out = _strict(root, "$")
    target = out
    ref = out.get("$ref")
    if isinstance(ref, str):
        target = _resolve(out, ref) or {}
    if not _is_object(target) or "anyOf" in target:
        raise NotStrictable("$: the top level must be an object")
    return out


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and kind == ["object"])


def _types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    return []


def _merge_all_of(node: dict[str, Any], path: str) -> dict[str, Any]:
    parts = node.pop("allOf")
    if not isinstance(parts, list):
        raise NotStrictable(f"{path}: allOf must be a list")
    for part in parts:
        if not isinstance(part, dict):
            raise NotStrictable(f"{path}: allOf entries must be schemas")
        merged = _merge_all_of(dict(part), path) if "allOf" in part else part
        for key, value in merged.items():
            if key == "properties" and isinstance(value, dict):
                known_props = node.get("properties", {})
                extra = {k: v for k, v in value.items() if k not in known_props}
                node["properties"] = {**known_props, **extra}
            elif key == "required" and isinstance(value, list):
                known = list(node.get("required", []))
                node["required"] = known + [r for r in value if r not in known]
            else:
                node.setdefault(key, value)
    return node


def _strict(schema: Any, path: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise NotStrictable(f"{path}: a schema must be an object, not {schema!r}")
    node = dict(schema)
    if "allOf" in node:
        node = _merge_all_of(node, path)
    if "oneOf" in node:
        branches = node.pop("oneOf")
        node["anyOf"] = [*node.get("anyOf", []), *branches]
    if "$ref" in node and set(node) - {"$ref", "$defs", "definitions"}:
        # strict mode allows no siblings next to $ref, but does next to anyOf
        ref = node.pop("$ref")
        if "anyOf" in node:
            node["anyOf"] = [{"$ref": ref}, *node["anyOf"]]
        else:
            node["anyOf"] = [{"$ref": ref}]
        node = {
            k: v for k, v in node.items() if k in ("anyOf", "description", "$defs", "definitions")
        }

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEPT_KEYWORDS:
            continue
        if key == "format" and value not in STRICT_FORMATS:
            continue
        if key == "pattern" and (not isinstance(value, str) or _LOOKAROUND.search(value)):
            continue
        out[key] = value

    for defs_key in ("$defs", "definitions"):
        if isinstance(out.get(defs_key), dict):
            out[defs_key] = {
                name: _strict(sub, f"{path}.{defs_key}.{name}")
                for name, sub in out[defs_key].items()
            }

    ref = out.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
        raise NotStrictable(f"{path}: only local $ref is supported, not {ref!r}")

    if "anyOf" in out:
        if not isinstance(out["anyOf"], list) or not out["anyOf"]:
            raise NotStrictable(f"{path}: anyOf must be a non-empty list")
        out["anyOf"] = [_strict(b, f"{path}.anyOf[{i}]") for i, b in enumerate(out["anyOf"])]

    types = _types(out)
    if "properties" in out and not types:
        out["type"] = "object"
        types = ["object"]
    if not types and not any(k in out for k in ("anyOf", "$ref", "enum", "const")):
        raise NotStrictable(f"{path}: a value of any type cannot be expressed in strict mode")

    if "object" in types:
        _strict_object(out, node, path)
    else:
        out.pop("additionalProperties", None)
        out.pop("properties", None)
        out.pop("required", None)
    if "array" in types:
        items = out.get("items")
        if not isinstance(items, dict):
            raise NotStrictable(f"{path}: an array needs one `items` schema in strict mode")
        out["items"] = _strict(items, f"{path}[]")
    else:
        out.pop("items", None)
        out.pop("minItems", None)
        out.pop("maxItems", None)
    return out


def _strict_object(out: dict[str, Any], original: Mapping[str, Any], path: str) -> None:
    properties = out.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    if not properties:
        extra = original.get("additionalProperties", True)
        if extra is not False or original.get("patternProperties"):
            raise NotStrictable(f"{path}: a free-form object (a map) has no strict form")
    required = set(original.get("required") or ())
    out["properties"] = {
        name: (
            _strict(sub, f"{path}.{name}")
            if name in required
            else nullable(_strict(sub, f"{path}.{name}"))
        )
        for name, sub in properties.items()
    }
    out["required"] = list(properties)
    out["additionalProperties"] = False


def accepts_null(schema: Any) -> bool:
    """True when `schema` visibly allows null (type, enum, const or an anyOf branch)."""
    if not isinstance(schema, Mapping):
        return schema is True
    if not schema:
        return True
    if "null" in _types(schema):
        return True
    if "const" in schema and schema["const"] is None:
        return True
    enum = schema.get("enum")
    if isinstance(enum, list) and None in enum:
        return True
    return any(
        accepts_null(branch)
        for key in ("anyOf", "oneOf")
        for branch in (schema.get(key) or ())
        if isinstance(branch, Mapping)
    )


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` that also accepts null: `type: [t, "null"]`, or an anyOf with null."""
    if accepts_null(schema):
        return schema
    out = dict(schema)
    if "anyOf" in out and "type" not in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        return out
    if "type" in out and not any(k in out for k in ("anyOf", "$ref", "const")):
        out["type"] = [*_types(out), "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
        return out
    if isinstance(out.get("enum"), list) and not any(k in out for k in ("anyOf", "$ref", "const")):
        out["enum"] = [*out["enum"], None]
        return out
    description = out.pop("description", None)
    wrapped: dict[str, Any] = {"anyOf": [out, {"type": "null"}]}
    if description is not None:
        wrapped["description"] = description
    return wrapped


def _resolve(root: Mapping[str, Any], ref: str) -> dict[str, Any] | None:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return dict(node) if isinstance(node, Mapping) else None


def drop_added_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` without nulls for optional properties whose schema does not accept null.

    Strict mode makes every property required, so a model answers null where the contract
    means "leave it out"; this puts the answer back into the contract's terms. Returns a
    new value; anything else is left as it is.
    """
    return _Dropper(schema).walk(value, schema, 0)


class _Dropper:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def deref(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and depth < 64:
            target = _resolve(self.root, ref)
            if target is not None:
                extra = {k: v for k, v in schema.items() if k != "$ref"}
                return self.deref({**target, **extra}, depth + 1)
        return schema

    def walk(self, value: Any, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > 64 or value is None:
            return value
        schema = self.deref(schema, depth)
        for part in schema.get("allOf") or ():
            value = self.walk(value, part, depth + 1)
        branches = [
            self.deref(b, depth)
            for key in ("anyOf", "oneOf")
            for b in (schema.get(key) or ())
            if isinstance(b, Mapping)
        ]
        if branches:
            branch = self.pick(value, branches)
            if branch is not None:
                value = self.walk(value, branch, depth + 1)
        if isinstance(value, dict):
            return self.walk_object(value, schema, depth)
        if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            return [self.walk(item, schema["items"], depth + 1) for item in value]
        return value

    @staticmethod
    def pick(value: Any, branches: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        if isinstance(value, dict):
            objects = [b for b in branches if isinstance(b.get("properties"), Mapping)]
            if not objects:
                return None
            return max(objects, key=lambda b: len(set(value) & set(b["properties"])))
        if isinstance(value, list):
            return next((b for b in branches if "array" in _types(b)), None)
        return None

    def walk_object(self, value: dict[str, Any], schema: Mapping[str, Any], depth: int) -> Any:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return value
        required = set(schema.get("required") or ())
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key)
            if not isinstance(sub, Mapping):
                out[key] = item
                continue
            sub = self.deref(sub, depth)
            if item is None and key not in required and not accepts_null(sub):
                continue
            out[key] = self.walk(item, sub, depth + 1)
        return out
