"""Responders: what the simulated model answers.

A responder is any object with `respond(model, messages, schema, rng) -> JSON value`.
`schema` is the JSON Schema the request asked for (`{"type": "object"}` in plain JSON mode,
`None` when free text is fine); `rng` is seeded from the request, so drawing from it keeps
the simulator deterministic. `SchemaResponder` answers anything with data valid against the
schema; the CLI loads others with `--responder module:attribute`.
"""

from __future__ import annotations

import importlib
import json
import random
import re
import string
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from turing.errors import ConfigError
from turing.sim import schema as js

Message = Mapping[str, Any]

__all__ = ["Responder", "SchemaResponder", "load_responder", "prompt_text", "prompt_values"]


@runtime_checkable
class Responder(Protocol):
    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any: ...


_HINT_LINE = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_ ]{0,40}?)[ \t]*:[ \t]*(\S.*?)[ \t]*$", re.M)
_WORDS = (
    *("data", "pipeline", "service", "platform", "team", "python", "sql", "cloud", "model"),
    *("report", "customer", "product", "analysis", "system", "design", "quality", "review"),
    *("network", "support", "project", "release", "migration", "search", "cache", "queue"),
    *("index", "metric", "dashboard", "contract", "workflow", "batch", "stream"),
)
_NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov")
_MAX_DEPTH = 8


def prompt_text(messages: list[dict[str, Any]], roles: tuple[str, ...] = ("user",)) -> str:
    """The text of the messages with the given roles, joined by blank lines."""
    parts: list[str] = []
    for message in messages:
        if message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # OpenAI content parts
            parts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return "\n\n".join(parts)


def prompt_values(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """`name: value` lines of the user messages (first one wins), keys lower_snake_cased;
    values read as JSON when they are JSON (`posting_id: 12` -> 12), else as text."""
    out: dict[str, Any] = {}
    for match in _HINT_LINE.finditer(prompt_text(messages)):
        key = re.sub(r"\s+", "_", match.group(1).strip()).lower()
        raw = match.group(2)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(key, value)
    return out


class SchemaResponder:
    """Answers with data valid against the requested JSON Schema.

    Supports types (and type lists), required and optional properties, enum, const,
    minimum/maximum (exclusive too), multipleOf, minLength/maxLength, minItems/maxItems,
    uniqueItems, formats (email, date, date-time, time, uri, uuid, ipv4, hostname), anyOf,
    oneOf, allOf, nullable unions, `$ref`s, nested objects and arrays and
    `additionalProperties: false`. Top-level properties named in `name: value` prompt lines
    take that value when it fits. Without a schema it answers a short sentence.
    """

    def __init__(self, optional_rate: float = 0.5, null_rate: float = 0.2) -> None:
        self.optional_rate = optional_rate
        self.null_rate = null_rate

    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any:
        if schema is None:
            return f"This is a simulated answer from {model}."
        hints = prompt_values(messages)
        value: Any = None
        for _ in range(5):  # patterns and odd combinations may need another draw
            value = self.generate(schema, rng, hints=hints)
            if js.fits(value, schema):
                break
        return value

    def generate(
        self,
        schema: Mapping[str, Any],
        rng: random.Random,
        *,
        hints: Mapping[str, Any] | None = None,
    ) -> Any:
        """One value for `schema`; `hints` fill top-level properties when they fit."""
        return _Generator(schema, rng, self.optional_rate, self.null_rate).value(
            schema, "", 0, dict(hints or {})
        )


class _Generator:
    def __init__(
        self, root: Mapping[str, Any], rng: random.Random, optional_rate: float, null_rate: float
    ) -> None:
        self.root = root
        self.rng = rng
        self.optional_rate = optional_rate
        self.null_rate = null_rate

    def value(self, node: Any, name: str, depth: int, hints: dict[str, Any]) -> Any:
        schema = js.normalize(node, self.root)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        options = js.branches(schema)
        if options:
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            picked = self._pick_branch([js.normalize(o, self.root) for o in options])
            return self.value({**base, **picked}, name, depth, hints)
        kinds = js.types_of(schema)
        kind = self._pick_type(kinds, depth)
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema, depth, hints)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "integer":
            return self._integer(schema, name)
        if kind == "number":
            return self._number(schema)
        return self._string(schema, name)

    def _pick_branch(self, options: list[dict[str, Any]]) -> dict[str, Any]:
        real = [o for o in options if js.types_of(o) != ["null"]]
        if real and (len(real) == len(options) or self.rng.random() >= self.null_rate):
            return self.rng.choice(real)
        return self.rng.choice(options)

    def _pick_type(self, kinds: list[str], depth: int) -> str:
        if not kinds:
            return "string"
        real = [k for k in kinds if k != "null"]
        if depth >= _MAX_DEPTH and "null" in kinds:
            return "null"
        if real and (len(real) == len(kinds) or self.rng.random() >= self.null_rate):
            return real[0] if len(real) == 1 else self.rng.choice(real)
        return "null"

    def _object(self, schema: Mapping[str, Any], depth: int, hints: dict[str, Any]) -> Any:
        props: dict[str, Any] = dict(schema.get("properties") or {})
        required = [k for k in schema.get("required", []) if isinstance(k, str)]
        out: dict[str, Any] = {}
        for key, sub in props.items():
            hinted = key.lower() in hints and js.fits(hints[key.lower()], sub, self.root)
            wanted = key in required or hinted or depth >= _MAX_DEPTH
            if not wanted and self.rng.random() >= self.optional_rate:
                continue
            if depth >= _MAX_DEPTH and key not in required:
                continue
            out[key] = hints[key.lower()] if hinted else self.value(sub, key, depth + 1, {})
        for key in required:  # required without a property schema: anything will do
            if key not in out:
                out[key] = self._string({}, key)
        extra = schema.get("additionalProperties", True)
        if depth == 0 and set(schema) <= {"type", "title", "description"}:
            # plain JSON mode: echo the prompt's `name: value` lines, or say something
            return dict(hints) or {"answer": self._words_for("text")}
        low = int(schema.get("minProperties", 0))
        n = 0
        while len(out) < low and extra is not False and n < 100:
            key = f"{self.rng.choice(_WORDS)}_{n}"
            n += 1
            if key not in out:
                sub = extra if isinstance(extra, dict) else {"type": "string"}
                out[key] = self.value(sub, key, depth + 1, {})
        return out

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        high = int(high) if high is not None else low + 3
        if depth >= _MAX_DEPTH:
            high = low
        n = self.rng.randint(low, max(low, min(high, low + 3)))
        if low == 0 and high > 0 and n == 0 and self.rng.random() < 0.7:
            n = 1
        prefix = list(schema.get("prefixItems") or [])
        items = schema.get("items", {})
        unique = bool(schema.get("uniqueItems"))
        single = name[:-1] if name.endswith("s") else name
        out: list[Any] = []
        tries = 0
        while len(out) < n and tries < n * 20 + 20:
            tries += 1
            i = len(out)
            sub = prefix[i] if i < len(prefix) else items if isinstance(items, dict) else {}
            item = self.value(sub, single, depth + 1, {})
            if unique and item in out:
                continue
            out.append(item)
        return out

    def _bounds(
        self, schema: Mapping[str, Any], default: tuple[float, float]
    ) -> tuple[float, float, bool, bool]:
        """(low, high, low is exclusive, high is exclusive), draft 4 and 2020 spellings."""
        low = _num(schema.get("minimum"))
        high = _num(schema.get("maximum"))
        open_low = schema.get("exclusiveMinimum") is True
        open_high = schema.get("exclusiveMaximum") is True
        ex_low = _num(schema.get("exclusiveMinimum"))
        ex_high = _num(schema.get("exclusiveMaximum"))
        if ex_low is not None and (low is None or ex_low >= low):
            low, open_low = ex_low, True
        if ex_high is not None and (high is None or ex_high <= high):
            high, open_high = ex_high, True
        if low is None and high is None:
            low, high = default
        elif low is None:
            assert high is not None
            low = min(default[0], high - default[1])
        elif high is None:
            high = low + default[1]
        return low, high, open_low, open_high

    def _integer(self, schema: Mapping[str, Any], name: str) -> int:
        default = (1.0, 1000.0) if name == "id" or name.endswith("_id") else (0.0, 100.0)
        if "year" in name:
            default = (1990.0, 2025.0)
        low_f, high_f, open_low, open_high = self._bounds(schema, default)
        low = int(low_f) + 1 if open_low and low_f == int(low_f) else _ceil(low_f)
        high = int(high_f) - 1 if open_high and high_f == int(high_f) else int(high_f // 1)
        high = max(low, high)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = _ceil(low / step) * step
            count = max(0, (high - first) // step)
            return int(first + step * self.rng.randint(0, count))
        return self.rng.randint(low, high)

    def _number(self, schema: Mapping[str, Any]) -> float:
        low, high, open_low, open_high = self._bounds(schema, (0.0, 100.0))
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            first = _ceil(low / step)
            last = int(high // step)
            k = self.rng.randint(first, max(first, last))
            return float(round(k * step, 10))
        span = high - low
        for _ in range(20):
            value = round(low + self.rng.random() * span, 2)
            inside = (value > low or not open_low) and (value < high or not open_high)
            if inside and low <= value <= high:
                return value
        return low + span / 2

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        fmt = schema.get("format")
        lowered = name.lower()
        if fmt is None and "email" in lowered:
            fmt = "email"
        text = self._formatted(fmt) if isinstance(fmt, str) else None
        if text is None:
            text = self._words_for(lowered)
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            text = self._for_pattern(pattern, text)
        while len(text) < low:
            text += " " + self.rng.choice(_WORDS)
        if high is not None and len(text) > int(high):
            text = text[: int(high)].rstrip() or text[: int(high)]
        return text

    def _words_for(self, name: str) -> str:
        if name in ("full_name", "author", "person", "candidate", "contact"):
            return self.rng.choice(_NAMES)
        if name == "name":
            return self.rng.choice(_WORDS).capitalize()
        count = 1 if name.endswith(("name", "title", "id", "code", "label")) else 3
        if name in ("reasoning", "evidence", "summary", "description", "text", "explanation"):
            count = 8
        words = [self.rng.choice(_WORDS) for _ in range(count)]
        text = " ".join(words)
        return text[0].upper() + text[1:] if count > 3 else text

    def _formatted(self, fmt: str) -> str | None:
        rng = self.rng
        moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3 * 10**7))
        if fmt == "email":
            return f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}@example.com"
        if fmt == "date":
            return date.isoformat(moment.date())
        if fmt == "date-time":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if fmt == "time":
            return moment.strftime("%H:%M:%SZ")
        if fmt in ("uri", "url", "iri", "uri-reference"):
            return f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}"
        if fmt == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if fmt == "ipv4":
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        if fmt in ("hostname", "idn-hostname"):
            return f"{rng.choice(_WORDS)}.example.com"
        return None

    def _for_pattern(self, pattern: str, text: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error:
            return text
        if compiled.search(text):
            return text
        for _ in range(5):
            candidate = _from_pattern(pattern, self.rng)
            if candidate is not None and compiled.search(candidate):
                return candidate
        return text


_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_NOT_DIGIT": string.ascii_letters,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_NOT_WORD": "-. ",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": string.ascii_letters + string.digits,
}
_POOL = string.ascii_letters + string.digits + "-_. @"


class _Unsupported(Exception):
    pass


def _from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching a simple regex (literals, classes, repeats, groups, branches)."""
    try:
        parsed = importlib.import_module("re._parser").parse(pattern)
    except Exception:
        return None
    out: list[str] = []

    def in_set(ch: str, items: list[Any]) -> bool:
        for op, arg in items:
            name = str(op)
            if (name == "LITERAL" and ch == chr(arg)) or (
                name == "RANGE" and arg[0] <= ord(ch) <= arg[1]
            ):
                return True
            if name == "CATEGORY" and ch in _CATEGORY_CHARS.get(str(arg), ""):
                return True
        return False

    def one_of(items: list[Any]) -> str:
        if items and str(items[0][0]) == "NEGATE":
            choices = [c for c in _POOL if not in_set(c, items[1:])]
            if not choices:
                raise _Unsupported
            return rng.choice(choices)
        op, arg = rng.choice(items)
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(rng.randint(arg[0], arg[1]))
        if name == "CATEGORY" and str(arg) in _CATEGORY_CHARS:
            return rng.choice(_CATEGORY_CHARS[str(arg)])
        raise _Unsupported

    def emit(items: Any) -> None:
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "NOT_LITERAL":
                out.append("a" if arg != ord("a") else "b")
            elif name == "ANY":
                out.append(rng.choice(string.ascii_lowercase))
            elif name == "IN":
                out.append(one_of(list(arg)))
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, high, sub = arg
                for _ in range(rng.randint(low, min(high, low + 3))):
                    emit(sub)
            elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
                emit(arg[-1])
            elif name == "BRANCH":
                emit(rng.choice(arg[1]))
            elif name != "AT":
                raise _Unsupported

    try:
        emit(parsed)
    except _Unsupported:
        return None
    return "".join(out)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ceil(x: float) -> int:
    n = int(x)
    return n + 1 if n < x else n


def load_responder(spec: str) -> Responder:
    """`module:attribute` -> a responder. The attribute may be a responder object, a class
    or factory returning one, or a plain function with `respond`'s signature. The current
    folder is importable, like with `python -m`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"responder {spec!r} must look like module:attribute")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import responder module {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if isinstance(target, type):
        target = target()
    if isinstance(target, Responder):
        return target
    if callable(target):
        return _FunctionResponder(target)
    raise ConfigError(f"{spec} is not a responder (needs a respond(model, messages, schema, rng))")


class _FunctionResponder:
    def __init__(self, func: Any) -> None:
        self.func = func

    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any:
        return self.func(model, messages, schema, rng)
