"""Contracts: JSON Schemas for workflow input and output, compiled once into a fast validator.

A contract is authored as a Pydantic model or as a raw JSON Schema. Pydantic models go
through `model_json_schema()`, which already has the semantics the old system got wrong
(defaulted fields are optional, `X | None` is a nullable X, `bool` is not an `int`); `$ref`s
are inlined so that repair can walk the schema. Validation runs in jsonschema-rs (Rust),
with string formats enforced; errors are built only when the fast `is_valid` path fails.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, TypeAlias

import jsonschema_rs
from pydantic import BaseModel

from turing._json import digest, shorten, truncate
from turing.errors import ContractViolation, InputInvalid, Violation

Schema: TypeAlias = dict[str, Any]
ContractLike: TypeAlias = "Contract | type[BaseModel] | Mapping[str, Any]"


class Contract:
    """A named, versioned JSON Schema with a compiled validator and a content hash."""

    __slots__ = ("_validator", "hash", "model", "name", "schema", "version")

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        name: str | None = None,
        version: int = 1,
        model: type[BaseModel] | None = None,
    ) -> None:
        resolved = _inline_refs(copy.deepcopy(dict(schema)))
        try:
            self._validator = jsonschema_rs.validator_for(resolved, validate_formats=True)
        except Exception as exc:  # jsonschema-rs raises ValueError subclasses for bad schemas
            raise ValueError(f"invalid JSON Schema for contract {name!r}: {exc}") from exc
        self.schema: Schema = resolved
        self.name: str = name or str(resolved.get("title") or "contract")
        self.version = version
        self.model = model
        self.hash: str = digest(resolved)

    @classmethod
    def from_model(
        cls, model: type[BaseModel], *, version: int = 1, name: str | None = None
    ) -> Contract:
        """Compile a Pydantic model's validation-mode JSON Schema."""
        return cls(
            model.model_json_schema(mode="validation"),
            name=name or model.__name__,
            version=version,
            model=model,
        )

    @property
    def fields(self) -> dict[str, Schema]:
        """Top-level properties (name -> subschema); empty for non-object contracts."""
        props = self.schema.get("properties")
        return dict(props) if isinstance(props, dict) else {}

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.schema.get("required", ()))

    def with_defaults(self, instance: Any) -> Any:
        """`instance` with every missing property that declares a `default` filled in
        (nested objects and arrays of objects too): the value as the contract means it. A
        contract's defaults are part of what it says; validating without applying them let
        `x: int | None = None` pass and then fail a sink that binds `:x`."""
        return _fill_defaults(instance, self.schema)

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))

    def violations(self, instance: Any, limit: int = 20) -> list[Violation]:
        """Every failed rule (up to `limit`), each with JSON path, rule, message and value."""
        if self._validator.is_valid(instance):
            return []
        out: list[Violation] = []
        for err in self._validator.iter_errors(instance):
            rule = str(err.schema_path[-1]) if err.schema_path else "schema"
            out.append(
                Violation(
                    path=json_path(err.instance_path),
                    rule=rule,
                    message=_message(err),
                    value=truncate(err.instance),
                )
            )
            if len(out) >= limit:
                break
        return out

    def check(
        self,
        instance: Any,
        *,
        workflow: str | None = None,
        version: int | None = None,
        what: str = "data",
        is_input: bool = False,
    ) -> None:
        """Raise ContractViolation (InputInvalid for inputs) naming contract and workflow."""
        found = self.violations(instance)
        if found:
            exc = InputInvalid if is_input else ContractViolation
            raise exc(self.name, found, workflow=workflow, version=version, what=what)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hash": self.hash}

    def __repr__(self) -> str:
        return f"Contract({self.name!r}, v{self.version}, {self.hash[:12]})"


def as_contract(value: Any, *, name: str | None = None, version: int = 1) -> Contract:
    """Accept a Contract, a Pydantic model class or a raw JSON Schema mapping."""
    if isinstance(value, Contract):
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        return Contract.from_model(value, version=version, name=name)
    if isinstance(value, Mapping):
        return Contract(value, name=name, version=version)
    raise TypeError(f"expected a Contract, a pydantic model or a JSON Schema dict, got {value!r}")


def _fill_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        props = schema.get("properties")
        if not isinstance(props, dict):
            return value
        out = dict(value)
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _fill_defaults(out[key], _branch(sub, out[key]))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_fill_defaults(v, _branch(schema["items"], v)) for v in value]
    return value


def _branch(schema: Mapping[str, Any], value: Any) -> Mapping[str, Any]:
    """The object branch of `X | None` (anyOf) when the value is an object."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and isinstance(value, dict):
            for option in options:
                if isinstance(option, dict) and option.get("type") == "object":
                    return option
    return schema


def json_path(parts: Any) -> str:
    """Render a jsonschema-rs instance path as `$.skills[2].weight`."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(err: Any) -> str:
    """The validator's message with the value it echoes cut short, so the reason survives."""
    message = str(err.message)
    echoed = json.dumps(err.instance, ensure_ascii=False, separators=(",", ":"))
    if len(echoed) > 80 and message.startswith(echoed):
        message = shorten(echoed, 80) + message[len(echoed) :]
    return shorten(message)


def _inline_refs(schema: Schema) -> Schema:
    """Replace local `#/$defs/...` references by their targets (recursive models keep theirs)."""
    defs: dict[str, Any] = schema.get("$defs", {}) or schema.get("definitions", {})

    def resolve(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
                key = ref.rsplit("/", 1)[1]
                if key in seen or key not in defs:
                    return node
                target = resolve(copy.deepcopy(defs[key]), seen | {key})
                extra = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
                return {**target, **extra} if isinstance(target, dict) else target
            return {k: resolve(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    out: Schema = resolve(schema, frozenset())
    if defs and not _has_ref(out):
        out.pop("$defs", None)
        out.pop("definitions", None)
    return out


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False
