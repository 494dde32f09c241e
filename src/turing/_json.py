"""Canonical JSON and hashing helpers shared by contracts, fingerprints and the CLI."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> str:
    """Stable text form: sorted keys, no whitespace; equal data gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """sha256 of the canonical form, hex; the basis of contract hashes and fingerprints."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def shorten(text: str, limit: int = 200) -> str:
    """Cut plain text to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def truncate(value: Any, limit: int = 80) -> str:
    """Short JSON form of a value for error messages and repair records."""
    return shorten(json.dumps(value, ensure_ascii=False, default=str), limit)


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value (`True` is a boolean, not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
