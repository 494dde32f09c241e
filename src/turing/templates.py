"""Strict, sandboxed prompt templates.

Every placeholder is resolved when a workflow is loaded: top-level names must be input
contract fields or earlier steps, and attribute chains (`{{ extract.skills }}`) must name
properties the producing schema declares. At run time an undefined value raises and a
`None` refuses to render as the text "None"; rendering is all-or-nothing, so a partially
filled prompt never reaches a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from turing.errors import TemplateRenderError


def _finalize(value: Any) -> Any:
    """Make `None` an error and containers JSON, so prompts never show Python reprs."""
    if value is None:
        raise TemplateRenderError(
            "a placeholder evaluated to null; guard it with {% if ... %} or `or 'n/a'`"
        )
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


_ENV = SandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=_finalize,
)
_ENV.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)


@dataclass(frozen=True)
class Placeholder:
    """A reference found in a template: root name plus attribute chain."""

    root: str
    attrs: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join((self.root, *self.attrs))


class PromptTemplate:
    """A compiled template plus the placeholders it references."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            ast = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
        self.names: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))
        self.placeholders: tuple[Placeholder, ...] = tuple(_chains(ast, self.names))
        self._template = _ENV.from_string(source)

    def render(self, variables: Mapping[str, Any]) -> str:
        """Render completely or raise TemplateRenderError naming the placeholder."""
        missing = sorted(n for n in self.names if n not in variables)
        if missing:
            raise TemplateRenderError(f"undefined placeholder(s): {', '.join(missing)}")
        try:
            return self._template.render(**variables)
        except TemplateRenderError:
            raise
        except UndefinedError as exc:
            raise TemplateRenderError(f"undefined value: {exc.message}") from exc
        except SecurityError as exc:
            raise TemplateRenderError(f"template tried an unsafe operation: {exc}") from exc
        except Exception as exc:
            raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from exc


def _chains(ast: nodes.Template, roots: frozenset[str]) -> list[Placeholder]:
    """Collect the longest static attribute chains hanging off undeclared root names."""
    found: dict[str, Placeholder] = {}

    def chain(node: nodes.Node) -> Placeholder | None:
        attrs: list[str] = []
        while True:
            if isinstance(node, nodes.Getattr):
                attrs.append(node.attr)
                node = node.node
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                if not isinstance(node.arg.value, str):
                    attrs.clear()  # list index: stop checking deeper than the list itself
                else:
                    attrs.append(node.arg.value)
                node = node.node
            else:
                break
        if isinstance(node, nodes.Name) and node.name in roots and node.ctx == "load":
            return Placeholder(node.name, tuple(reversed(attrs)))
        return None

    def visit(node: nodes.Node) -> None:
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            ph = chain(node)
            if ph is not None:
                found.setdefault(str(ph), ph)
                return
        for child in node.iter_child_nodes():
            visit(child)

    visit(ast)
    return list(found.values())
