"""`find`: rank workflows for a free-text request with BM25.

Each workflow becomes a small document: its name and alias, description, tags, step names
and the field names of its contracts (nested ones too). Terms are lower-cased, split on
non-letters and underscores, stripped of a plural `s`; the name and description count
double, since they say what the workflow is for rather than what it touches.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from turing.workflow import Workflow

_STOP = frozenset(
    {"a", "an", "and", "the", "of", "for", "from", "to", "in", "on", "with", "by", "at", "as"}
    | {"is", "are", "be", "it", "this", "that", "all", "each", "into", "out", "then", "or"}
)
_WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> list[str]:
    """Normalised search terms of `text`."""
    out = []
    for raw in _WORD.findall(text.lower().replace("_", " ")):
        if raw in _STOP:
            continue
        word = raw
        if len(raw) > 3 and raw.endswith("ies"):
            word = raw[:-3] + "y"
        elif len(raw) > 3 and raw.endswith("s") and not raw.endswith("ss"):
            word = raw[:-1]
        out.append(word)
    return out


@dataclass(frozen=True)
class Match:
    workflow: Workflow
    score: float

    def as_dict(self) -> dict[str, Any]:
        wf = self.workflow
        return {
            "name": wf.name,
            "alias": wf.alias,
            "version": wf.version,
            "score": round(self.score, 4),
            "description": wf.description,
        }


def field_names(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            yield key
            yield from field_names(sub)
        for key in ("items", "anyOf", "oneOf"):
            sub = schema.get(key)
            for part in sub if isinstance(sub, list) else [sub]:
                yield from field_names(part)


def document(wf: Workflow) -> list[str]:
    return document_terms(
        wf.name,
        wf.description,
        alias=wf.alias,
        tags=wf.tags,
        steps=[cs.name for cs in wf.steps],
        input_schema=wf.input.schema,
        output_schema=wf.output.schema,
    )


def document_terms(
    name: str,
    description: str,
    *,
    alias: int | None,
    tags: Iterable[str],
    steps: Iterable[str],
    input_schema: Any,
    output_schema: Any,
) -> list[str]:
    """A workflow's search terms (the planner's catalog entries use the same)."""
    weighted = " ".join([name, description] * 2)
    parts = [
        weighted,
        str(alias or ""),
        " ".join(tags),
        " ".join(steps),
        " ".join(field_names(input_schema)),
        " ".join(field_names(output_schema)),
    ]
    return terms(" ".join(parts))


def rank(
    query: str, workflows: Sequence[Workflow], k1: float = 1.5, b: float = 0.75
) -> list[Match]:
    """Workflows by BM25 relevance to `query`, best first; zero scores are left out."""
    if query.strip().isdigit():
        return [Match(wf, 1.0) for wf in workflows if str(wf.alias) == query.strip()]
    scores = bm25(terms(query), [document(wf) for wf in workflows], k1, b)
    scored = [Match(wf, s) for wf, s in zip(workflows, scores, strict=True) if s > 0]
    scored.sort(key=lambda m: (-m.score, m.workflow.name))
    return scored


def bm25(
    query: Sequence[str], documents: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75
) -> list[float]:
    """The BM25 score of each document (a list of terms) for the query terms."""
    docs = [Counter(d) for d in documents]
    if not docs:
        return []
    avg = sum(sum(d.values()) for d in docs) / len(docs) or 1.0
    n = len(docs)
    df = Counter(term for d in docs for term in d)
    out = []
    for doc in docs:
        length = sum(doc.values())
        score = 0.0
        for term in query:
            tf = doc.get(term, 0)
            if not tf:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        out.append(score)
    return out
