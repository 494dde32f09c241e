"""The catalog: what a planner may use, as plain data.

Planners, validation and the plan schema read the registry through this snapshot rather than
through `Workflow` objects, so the same JSON can be shown to a model in its prompt and read
back by the simulator's planning responder. It names workflows, their input and output
contracts, whether they can fan out over a source, and the filters that source declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from turing.registry import Registry
from turing.search import document_terms
from turing.sources import SourceFilter


@dataclass(frozen=True)
class Filter:
    name: str
    column: str
    op: str
    type: str
    description: str
    schema: Mapping[str, Any]

    @classmethod
    def of(cls, name: str, flt: SourceFilter) -> Filter:
        return cls(name, flt.column, flt.op, flt.type, flt.description, flt.schema())


@dataclass(frozen=True)
class Entry:
    """One workflow as a planner sees it."""

    name: str
    description: str
    input: Mapping[str, Any]
    output: Mapping[str, Any]
    alias: int | None = None
    tags: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    subject_key: str | None = None
    has_source: bool = False
    filters: Mapping[str, Filter] = field(default_factory=dict)

    @property
    def input_fields(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.input.get("properties") or {}
        return props

    @property
    def input_required(self) -> frozenset[str]:
        return frozenset(self.input.get("required") or ())

    @property
    def output_fields(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.output.get("properties") or {}
        return props

    def document(self) -> list[str]:
        """Search terms, as `turing find` makes them for the workflow itself."""
        return document_terms(
            self.name,
            self.description,
            alias=self.alias,
            tags=self.tags,
            steps=self.steps,
            input_schema=self.input,
            output_schema=self.output,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "description": self.description,
            "tags": list(self.tags),
            "steps": list(self.steps),
            "subject_key": self.subject_key,
            "for_each": self.has_source,
            "filters": {
                f.name: {"column": f.column, "op": f.op, "type": f.type}
                | {"description": f.description}
                for f in self.filters.values()
            },
            "input": self.input,
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        filters = {
            name: Filter.of(
                name,
                SourceFilter(spec["column"], spec["op"], spec["type"], spec.get("description", "")),
            )
            for name, spec in (data.get("filters") or {}).items()
        }
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            input=data.get("input") or {"type": "object"},
            output=data.get("output") or {"type": "object"},
            alias=data.get("alias"),
            tags=tuple(data.get("tags") or ()),
            steps=tuple(data.get("steps") or ()),
            subject_key=data.get("subject_key"),
            has_source=bool(data.get("for_each")),
            filters=filters,
        )


class Catalog:
    """Workflows by name, in registry order."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries: dict[str, Entry] = {e.name: e for e in entries}

    @classmethod
    def from_registry(cls, registry: Registry) -> Catalog:
        entries = []
        for wf in registry:
            source = wf.source
            filters = {n: Filter.of(n, f) for n, f in (source.filters if source else {}).items()}
            entries.append(
                Entry(
                    name=wf.name,
                    description=wf.description,
                    input=wf.input.schema,
                    output=wf.output.schema,
                    alias=wf.alias,
                    tags=tuple(wf.tags),
                    steps=tuple(s.name for s in wf.steps),
                    subject_key=(source.key if source else None) or wf.subject_key,
                    has_source=source is not None,
                    filters=filters,
                )
            )
        return cls(entries)

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, Any]]) -> Catalog:
        return cls(Entry.from_dict(d) for d in data)

    def as_list(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.entries.values()]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> Entry:
        return self.entries[name]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def names(self) -> list[str]:
        return list(self.entries)
