"""Fault injection: pick a fault for a request, and turn a good answer into a faulty one.

Transport faults (`http_500`, `http_429`, `hang`) are played by the HTTP layer. Content
faults rewrite the answer's text; `apply` returns None when a fault does not apply to the
answer and schema (the request then gets a correct answer, and no fault is counted).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from turing.sim import schema as js
from turing.sim.config import FAULT_KINDS, SimConfig

__all__ = ["apply", "choose", "dumps"]

_BAD_ENUM_VALUES = (
    "critical",
    "mandatory",
    "other",
    "unknown",
    "n/a",
    "very_high",
    "somewhat",
    "tbd",
)
_EXTRA_FIELDS: tuple[tuple[str, Any], ...] = (
    ("confidence", 0.87),
    ("notes", "Extracted from the provided text."),
    ("source", "model"),
    ("explanation", "I listed every item the text mentions."),
    ("language", "en"),
    ("_comment", "generated"),
)


# Plausible, invented content for `ungrounded`: names no taxonomy has and sentences no
# prompt contains (each is checked against the prompt before it is used).
_INVENTED_NAMES = (
    "HyperMesh",
    "Quantaflow",
    "Kubernova",
    "DataWeave Pro",
    "Zephyr SQL",
    "NeuroGrid",
    "Cloudlane Ops",
    "Vectorium",
)
_INVENTED_QUOTES = (
    "Proven track record leading {x} initiatives across global teams",
    "Hands-on ownership of our {x} roadmap from day one",
    "Deep expertise in {x} at enterprise scale is essential",
    "You will mentor engineers on {x} best practices",
    "Certified {x} practitioner with published work",
    "Experience running {x} in regulated environments",
)
_QUOTED = re.compile(r'"([^"]{3,})"')


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def choose(config: SimConfig, rng: random.Random, model: str = "") -> str | None:
    """The fault kind for one response (by the rates configured for `model`), or None."""
    rates = config.faults_for(model)
    if not rates:
        return None
    u = rng.random()
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += rates.get(kind, 0.0)
        if u < edge:
            return kind
    return None


def apply(
    kind: str,
    value: Any,
    schema: Mapping[str, Any] | None,
    rng: random.Random,
    *,
    prompt: str = "",
) -> str | None:
    """The faulty content for a content fault, or None when it does not apply.

    `value` is the correct answer (a JSON value); `schema` what was asked for (None for free
    text, in which case only `empty` applies); `prompt` the text the answer was drawn from
    (what `ungrounded` must not quote).
    """
    if kind == "empty":
        return ""
    if schema is None:
        return None
    if kind == "ungrounded":
        return _ungrounded(value, schema, rng, prompt)
    maker = _MAKERS.get(kind)
    return maker(value, schema, rng) if maker else None


def _malformed(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    if not isinstance(value, dict | list) or not value:
        return None
    text = dumps(value)
    variant = rng.choice(("trailing_comma", "single_quotes", "cut_tail"))
    if variant == "trailing_comma":
        return text[:-1] + "," + text[-1]
    if variant == "single_quotes":
        return _single_quoted(value)
    closers = len(text) - len(text.rstrip("]}"))
    return text[: len(text) - rng.randint(1, closers)]


def _single_quoted(value: Any) -> str:
    """Python-literal style: 'keys' and 'strings' (double quotes when the text has a ')."""
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_quote(str(k))}: {_single_quoted(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_single_quoted(v) for v in value) + "]"
    if isinstance(value, str):
        return _quote(value)
    return dumps(value)


def _quote(text: str) -> str:
    if "'" in text:
        return dumps(text)
    inner = dumps(text)[1:-1].replace('\\"', '"')
    return f"'{inner}'"


def _fenced(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    intro = rng.choice(
        (
            "Sure! Here is the JSON you asked for:",
            "Here is the extracted data:",
            "Of course. Based on the text, the result is:",
        )
    )
    outro = rng.choice(
        (
            "Let me know if you need anything else.",
            "I hope this helps!",
            "Note: values were taken directly from the text.",
        )
    )
    body = json.dumps(value, ensure_ascii=False, indent=2)
    return f"{intro}\n\n```json\n{body}\n```\n\n{outro}"


def _array_property(schema: Mapping[str, Any]) -> str | None:
    """The one array property of an object schema, if it has exactly one."""
    root = js.normalize(schema, schema)
    if "object" not in js.types_of(root):
        return None
    found = []
    for key, sub in (root.get("properties") or {}).items():
        node = js.normalize(sub, schema)
        kinds = set(js.types_of(node))
        for option in js.branches(node):
            kinds |= set(js.types_of(js.normalize(option, schema)))
        if "array" in kinds:
            found.append(key)
    return found[0] if len(found) == 1 else None


def _bare_array(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    key = _array_property(schema)
    if key is None or not isinstance(value, dict) or not isinstance(value.get(key), list):
        return None
    return dumps(value[key])


def _one_element(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    if not isinstance(value, dict):
        return None
    return dumps([value])


def _json_string(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    candidates = [
        path
        for path, node, sub in js.walk(value, schema, schema)
        if path and isinstance(node, dict | list) and "string" not in js.types_of(sub)
    ]
    if not candidates:
        return None
    path = rng.choice(candidates)
    broken = json.loads(dumps(value))
    js.set_at(broken, path, dumps(js.get_at(broken, path)))
    return dumps(broken)


def _wrong_enum(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    candidates = [
        (path, sub["enum"])
        for path, node, sub in js.walk(value, schema, schema)
        if path and isinstance(sub.get("enum"), list) and isinstance(node, str)
    ]
    if not candidates:
        return None
    path, allowed = rng.choice(candidates)
    taken = {str(v).lower() for v in allowed}
    options = [v for v in _BAD_ENUM_VALUES if v not in taken]
    broken = json.loads(dumps(value))
    js.set_at(broken, path, rng.choice(options))
    return dumps(broken)


def _missing_field(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    candidates = [
        (path, key)
        for path, node, sub in js.walk(value, schema, schema)
        if isinstance(node, dict)
        for key in sub.get("required", ())
        if key in node
    ]
    if not candidates:
        return None
    path, key = rng.choice(candidates)
    broken = json.loads(dumps(value))
    del js.get_at(broken, path)[key]
    return dumps(broken)


def _extra_fields(value: Any, schema: Mapping[str, Any], rng: random.Random) -> str | None:
    if not isinstance(value, dict):
        return None
    root = js.normalize(schema, schema)
    known = set(root.get("properties") or {}) | set(value)
    options = [(k, v) for k, v in _EXTRA_FIELDS if k not in known]
    picked = rng.sample(options, k=min(len(options), rng.randint(1, 3)))
    return dumps({**value, **dict(picked)})


_MAKERS: dict[str, Callable[[Any, Mapping[str, Any], random.Random], str | None]] = {
    "malformed_json": _malformed,
    "fenced_prose": _fenced,
    "bare_array": _bare_array,
    "one_element_array": _one_element,
    "json_string": _json_string,
    "wrong_enum": _wrong_enum,
    "missing_field": _missing_field,
    "extra_fields": _extra_fields,
}


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _invented(options: tuple[str, ...], prompt: str, rng: random.Random, fill: str) -> str | None:
    source = _normal(prompt)
    picks = list(options)
    rng.shuffle(picks)
    for pick in picks:
        text = pick.format(x=fill)
        if _normal(text) not in source:
            return text
    return None


def _ungrounded(
    value: Any, schema: Mapping[str, Any], rng: random.Random, prompt: str
) -> str | None:
    """The answer, schema-valid, with one free string made up: a quoted part (or a long
    text) becomes a sentence the prompt does not contain, a short value (a name) a name it
    does not contain. Enums, consts, formats, patterns and ids are left alone."""
    candidates = [
        (path, node)
        for path, node, sub in js.walk(value, schema, schema)
        if path
        and isinstance(node, str)
        and node.strip()
        and not {"enum", "const", "format", "pattern"} & set(sub)
        and not (isinstance(path[-1], str) and path[-1].lower().endswith("id"))
    ]
    if not candidates:
        return None
    path, old = rng.choice(candidates)
    name = rng.choice(_INVENTED_NAMES)
    quoted = list(_QUOTED.finditer(old))
    if quoted:  # keep the frame, invent the (longest) quote
        where = max(quoted, key=lambda m: len(m.group(1)))
        sentence = _invented(_INVENTED_QUOTES, prompt, rng, name)
        new = None if sentence is None else old[: where.start(1)] + sentence + old[where.end(1) :]
    elif len(old) > 40:
        new = _invented(_INVENTED_QUOTES, prompt, rng, name)
    else:
        new = _invented(_INVENTED_NAMES, prompt, rng, "")
    if new is None or new == old:
        return None
    broken = json.loads(dumps(value))
    js.set_at(broken, path, new)
    return dumps(broken) if js.fits(broken, schema) else None
