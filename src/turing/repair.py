"""Deterministic repair of model output, applied before any re-ask.

Two stages, each fix recorded with its kind, JSON path and before/after:

1. Parsing text into JSON: strip code fences, strip prose around the JSON, then
   json-repair for broken JSON (trailing commas, single quotes, unquoted keys, a cut tail).
2. Fitting the value to the schema: decode JSON-encoded strings where an object or array
   is wanted; wrap a bare array into the object's one array field (copying pass-through
   fields such as the subject key from the input); unwrap a one-element array only if the
   element fits; coerce "5" -> 5 and "true" -> true only where the schema wants that type;
   fix the case of an enum value; drop unknown fields where the schema forbids them; fill
   a missing required top-level field from the input when the input has a fitting value.

What still fails validation afterwards is the caller's to re-ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import json_repair
import jsonschema_rs

from turing._json import canonical, json_type, shorten, truncate
from turing.contracts import Contract
from turing.errors import Violation

REPAIR_KINDS = (
    "strip_fences",
    "strip_prose",
    "json_repair",
    "decode_string",
    "wrap_array",
    "unwrap_singleton",
    "unwrap_object",
    "coerce_scalar",
    "coerce_enum",
    "drop_extra",
    "fill_passthrough",
)

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n?(.*?)(?:```|\Z)", re.DOTALL)
_INT = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Repair:
    kind: str
    path: str
    before: str
    after: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class RepairOutcome:
    """The repaired value (if any JSON could be read), the fixes, and what is still wrong."""

    value: Any
    repairs: tuple[Repair, ...]
    violations: tuple[Violation, ...]
    parsed: bool

    @property
    def ok(self) -> bool:
        return self.parsed and not self.violations


class _Unparsed(Exception):
    pass


def repair(
    text: str, contract: Contract, passthrough: Mapping[str, Any] | None = None
) -> RepairOutcome:
    """Parse and fit raw model text to `contract`; never raises on bad text."""
    repairs: list[Repair] = []
    try:
        value = parse_json(text, repairs)
    except _Unparsed as exc:
        violation = Violation("$", "json", str(exc), truncate(text))
        return RepairOutcome(None, tuple(repairs), (violation,), parsed=False)
    value = fit(value, contract, passthrough or {}, repairs)
    return RepairOutcome(value, tuple(repairs), tuple(contract.violations(value)), parsed=True)


def fit(
    value: Any, contract: Contract, passthrough: Mapping[str, Any], repairs: list[Repair]
) -> Any:
    """Apply the schema-directed fixes; cheap no-op when the value already validates."""
    if contract.is_valid(value):
        return value
    return _Fitter(passthrough, repairs).fit(value, contract.schema, "$")


def parse_json(text: str, repairs: list[Repair]) -> Any:
    """Turn model text into a JSON value, recording each textual fix."""
    stripped = text.strip()
    if not stripped:
        raise _Unparsed("empty response: the model returned no content")
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    candidate = stripped
    fence = _FENCE.search(candidate)
    if fence:
        inner = fence.group(2).strip()
        repairs.append(Repair("strip_fences", "$", shorten(candidate), shorten(inner)))
        candidate = inner
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    start = _json_start(candidate)
    if start < 0:
        raise _Unparsed("no JSON object or array found in the response")
    best = _longest_json(candidate, start)
    if best is not None:
        value, begin, end = best
        repairs.append(
            Repair("strip_prose", "$", shorten(candidate), shorten(candidate[begin:end]))
        )
        return value
    if start > 0:
        repairs.append(Repair("strip_prose", "$", shorten(candidate), shorten(candidate[start:])))
        candidate = candidate[start:]
    fixed = json_repair.loads(candidate)
    if fixed == "" or not isinstance(fixed, dict | list):
        raise _Unparsed("response is not valid JSON and could not be repaired")
    repairs.append(Repair("json_repair", "$", shorten(candidate), truncate(fixed, 200)))
    return fixed


_OPENER = re.compile(
    r"""[\[{]\s*(?=["'{\[\]}\d-]|true|false|null)"""  # a JSON value, or a single-quoted string
    r"""|\{\s*[A-Za-z_$][\w$-]*\s*:"""  # an object with an unquoted key
)


def _longest_json(text: str, start: int) -> tuple[Any, int, int] | None:
    """The longest complete JSON value among non-nested openers from `start` on.

    `As noted in [1]: {...}` holds two values; the answer is the longer one. If the first
    opener does not decode, it is taken to be broken JSON and left to json-repair.
    """
    decoder = json.JSONDecoder()
    best: tuple[Any, int, int] | None = None
    pos = start
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            if best is None:
                return None
            match = _OPENER.search(text, pos + 1)
        else:
            if best is None or end - pos > best[2] - best[1]:
                best = (value, pos, end)
            match = _OPENER.search(text, end)
        pos = match.start() if match else -1
    return best


def _json_start(text: str) -> int:
    """Index of the first bracket that opens JSON-looking content (`[note]` in prose is not)."""
    match = _OPENER.search(text)
    return match.start() if match else -1


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_text), validate_formats=True)


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    return bool(_validator(canonical(schema)).is_valid(value))


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {str(x) for x in t}
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set()


class _Fitter:
    def __init__(self, passthrough: Mapping[str, Any], repairs: list[Repair]) -> None:
        self.passthrough = passthrough
        self.repairs = repairs

    def note(self, kind: str, path: str, before: Any, after: Any) -> None:
        self.repairs.append(Repair(kind, path, truncate(before), truncate(after)))

    def fit(self, value: Any, schema: Mapping[str, Any], path: str) -> Any:
        branch = self._branch(value, schema)
        if branch is None:
            return value
        schema = branch
        types = _types(schema)
        value = self._reshape(value, schema, types, path)
        if isinstance(value, dict) and "object" in types:
            return self._object(value, schema, path)
        if isinstance(value, list) and "array" in types:
            items = schema.get("items")
            if isinstance(items, dict):
                return [self.fit(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
            return value
        return self._scalar(value, schema, types, path)

    def _branch(self, value: Any, schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Pick the anyOf/oneOf branch to repair toward (`X | None` -> X unless value is null)."""
        options = schema.get("anyOf") or schema.get("oneOf")
        if not isinstance(options, list):
            return schema
        if value is None and any(_types(o) == {"null"} for o in options):
            return None
        real: list[Mapping[str, Any]] = [o for o in options if _types(o) != {"null"}]
        for option in real:
            if _fits(value, option):
                return None
        if len(real) == 1:
            return real[0]
        wanted = json_type(value)
        same = [o for o in real if wanted in _types(o)]
        return same[0] if same else None

    def _reshape(self, value: Any, schema: Mapping[str, Any], types: set[str], path: str) -> Any:
        if isinstance(value, str) and types & {"object", "array"} and "string" not in types:
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict | list):
                self.note("decode_string", path, value, decoded)
                value = decoded
        if isinstance(value, list) and "object" in types and "array" not in types:
            value = self._list_to_object(value, schema, path)
        elif isinstance(value, dict) and "array" in types and "object" not in types:
            lists = [v for v in value.values() if isinstance(v, list)]
            if len(lists) == 1:
                self.note("unwrap_object", path, value, lists[0])
                value = lists[0]
        return value

    def _list_to_object(self, value: list[Any], schema: Mapping[str, Any], path: str) -> Any:
        if len(value) == 1 and isinstance(value[0], dict | str):
            mark = len(self.repairs)
            candidate = self.fit(value[0], schema, path)
            if isinstance(candidate, dict) and _fits(candidate, schema):
                self.repairs.insert(
                    mark, Repair("unwrap_singleton", path, truncate(value), truncate(value[0]))
                )
                return candidate
            del self.repairs[mark:]
        props: Mapping[str, Any] = schema.get("properties", {})
        arrays = [name for name, sub in props.items() if "array" in _types(sub)]
        if len(arrays) != 1:
            return value
        wrapped: dict[str, Any] = {arrays[0]: value}
        if path == "$":
            for name in props:
                if name != arrays[0] and name in self.passthrough:
                    wrapped[name] = self.passthrough[name]
        self.note(
            "wrap_array",
            path,
            value,
            {k: v for k, v in wrapped.items() if k != arrays[0]} | {arrays[0]: "[…]"},
        )
        return wrapped

    def _object(
        self, value: dict[str, Any], schema: Mapping[str, Any], path: str
    ) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        out = dict(value)
        if schema.get("additionalProperties") is False and not schema.get("patternProperties"):
            for key in [k for k in out if k not in props]:
                self.note("drop_extra", f"{path}.{key}", out.pop(key), None)
        if path == "$":
            for name in schema.get("required", ()):
                known = name in self.passthrough and name in props
                if name not in out and known and _fits(self.passthrough[name], props[name]):
                    out[name] = self.passthrough[name]
                    self.note("fill_passthrough", f"{path}.{name}", None, out[name])
        for key, sub in props.items():
            if key in out and isinstance(sub, dict):
                out[key] = self.fit(out[key], sub, f"{path}.{key}")
        return out

    def _scalar(self, value: Any, schema: Mapping[str, Any], types: set[str], path: str) -> Any:
        new = value
        if isinstance(value, str) and "string" not in types:
            text = value.strip()
            if "integer" in types and _INT.match(text):
                new = int(text)
            elif "number" in types and _NUMBER.match(text):
                num = float(text)
                new = (
                    int(num)
                    if num.is_integer() and "." not in text and "e" not in text.lower()
                    else num
                )
            elif "integer" in types and _NUMBER.match(text) and float(text).is_integer():
                new = int(float(text))
            elif "boolean" in types and text.lower() in ("true", "false"):
                new = text.lower() == "true"
        elif isinstance(value, float) and "integer" in types and value.is_integer():
            new = int(value)
        if new is not value:
            self.note("coerce_scalar", path, value, new)
            value = new
        enum = schema.get("enum")
        if isinstance(value, str) and isinstance(enum, list) and value not in enum:
            folded = [
                e for e in enum if isinstance(e, str) and e.casefold() == value.strip().casefold()
            ]
            if len(folded) == 1:
                self.note("coerce_enum", path, value, folded[0])
                value = folded[0]
        return value
