"""The in-code registry of workflows: lookup by name or numeric alias, and free-text find."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from turing.errors import TuringError, UnknownWorkflowError
from turing.search import Match, rank
from turing.workflow import Workflow


class Registry:
    """Workflows known to a project; names and aliases are unique."""

    def __init__(self, workflows: Iterable[Workflow] = ()) -> None:
        self._by_name: dict[str, Workflow] = {}
        self._by_alias: dict[int, Workflow] = {}
        for wf in workflows:
            self.add(wf)

    def add(self, wf: Workflow) -> Workflow:
        if wf.name in self._by_name and self._by_name[wf.name] is not wf:
            raise TuringError(f"two workflows are named {wf.name!r}")
        if (
            wf.alias is not None
            and wf.alias in self._by_alias
            and self._by_alias[wf.alias] is not wf
        ):
            other = self._by_alias[wf.alias].name
            raise TuringError(f"workflows {other!r} and {wf.name!r} share alias {wf.alias}")
        self._by_name[wf.name] = wf
        if wf.alias is not None:
            self._by_alias[wf.alias] = wf
        return wf

    def get(self, key: str | int) -> Workflow:
        """By name, or by numeric alias (`1121` or "1121"); unknown names suggest close ones."""
        text = str(key).strip()
        if text in self._by_name:
            return self._by_name[text]
        if text.isdigit() and int(text) in self._by_alias:
            return self._by_alias[int(text)]
        close = difflib.get_close_matches(text, list(self._by_name), n=3)
        raise UnknownWorkflowError(text, close or list(self._by_name))

    def find(self, query: str, limit: int = 10) -> list[Match]:
        return rank(query, list(self))[:limit]

    def capabilities(self, fmt: str = "json") -> list[dict[str, Any]]:
        """Each workflow as a callable capability; `openai-tools` gives function-tool specs."""
        if fmt == "openai-tools":
            return [
                {
                    "type": "function",
                    "function": {
                        "name": wf.name,
                        "description": wf.description or wf.name,
                        "parameters": wf.input.schema,
                    },
                }
                for wf in self
            ]
        return [
            {
                "name": wf.name,
                "alias": wf.alias,
                "version": wf.version,
                "description": wf.description,
                "input": wf.input.schema,
                "output": wf.output.schema,
            }
            for wf in self
        ]

    def __iter__(self) -> Iterator[Workflow]:
        return iter(sorted(self._by_name.values(), key=lambda w: w.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, key: object) -> bool:
        try:
            self.get(str(key))
        except UnknownWorkflowError:
            return False
        return True
