"""A simulator responder for the talent workflows: plausible answers from the prompt text.

The LLM simulator (`turing sim-llm --responder talent.responder:responder`) calls it with
the rendered prompt and the requested schema. It recognises the workflow by the schema's
properties, reads the posting or CV back out of the prompt (the templates in
`talent.workflows`) and answers with what the offline extractor finds there, so results
look like a good model's. Anything else goes to the generic `SchemaResponder`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from talent import extractor
from turing.sim import SchemaResponder
from turing.sim.responders import prompt_text
from turing.sim.schema import fits, normalize

__all__ = ["TalentResponder", "responder"]

_POSTING_ID = re.compile(r"^posting_id:[ \t]*(\d+)[ \t]*$", re.M)
_PROFILE_ID = re.compile(r"profile_id:?[ \t]*(\d+)")


def _item_properties(schema: dict[str, Any], key: str) -> tuple[set[str], list[str]]:
    """Property names of the items of array property `key`, and the items' types."""
    prop = normalize((schema.get("properties") or {}).get(key), schema)
    options = [prop, *[normalize(o, schema) for o in prop.get("anyOf", [])]]
    for option in options:
        if "items" in option:
            items = normalize(option["items"], schema)
            kinds = items.get("type", [])
            return set(items.get("properties") or {}), [kinds] if isinstance(kinds, str) else kinds
    return set(), []


def _body_after_blank_line(text: str, start: int) -> str:
    """Everything after the first blank line at or after `start`."""
    cut = text.find("\n\n", start)
    return text[cut + 2 :] if cut != -1 else ""


def _posting(text: str) -> dict[str, Any] | None:
    """posting_id, title, company and description from the job_skills prompt."""
    found = _POSTING_ID.search(text)
    if not found:
        return None
    fields: dict[str, Any] = {"posting_id": int(found.group(1)), "title": "", "company": None}
    rest = text[found.end() + 1 :]
    lines = rest.split("\n")
    used = 0
    for line in lines:
        if line.startswith("Title:"):
            fields["title"] = line[len("Title:") :].strip()
        elif line.startswith("Company:"):
            fields["company"] = line[len("Company:") :].strip()
        else:
            break
        used += 1
    fields["description"] = "\n".join(lines[used:]).strip("\n")
    return fields if fields["description"] else None


def _profile(text: str) -> tuple[int, str] | None:
    found = _PROFILE_ID.search(text)
    if not found:
        return None
    cv_text = _body_after_blank_line(text, found.end()).strip()
    return (int(found.group(1)), cv_text) if cv_text else None


def _cv(text: str) -> str | None:
    cv_text = _body_after_blank_line(text, 0).strip()
    return cv_text or None


def _job_skills(text: str) -> Any:
    posting = _posting(text)
    if posting is None:
        return None
    return extractor.extract_posting_skills(
        posting["posting_id"], posting["title"], posting["description"]
    )


def _profile_skills(text: str) -> Any:
    found = _profile(text)
    return extractor.extract_profile_skills(*found) if found else None


def _profile_skills_legacy(text: str) -> Any:
    found = _profile(text)
    return extractor.extract_profile_skills_legacy(*found) if found else None


def _parsed_cv(text: str) -> Any:
    cv_text = _cv(text)
    return extractor.parse_cv(cv_text) if cv_text else None


def _which(schema: dict[str, Any]) -> Callable[[str], Any] | None:
    root = normalize(schema, schema)
    props = set(root.get("properties") or {})
    if {"posting_id", "skills"} <= props:
        names, _ = _item_properties(root, "skills")
        return _job_skills if {"name", "importance"} <= names else None
    if {"profile_id", "skills"} <= props:
        names, kinds = _item_properties(root, "skills")
        if {"name", "confidence"} <= names:
            return _profile_skills
        return _profile_skills_legacy if "string" in kinds else None
    if {"full_name", "skills", "experience"} <= props:
        return _parsed_cv
    return None


class TalentResponder:
    """job_skills, profile_skills, profile_skills_legacy and the CV parse from the prompt;
    anything else (or a prompt it cannot read) from `fallback`."""

    def __init__(self, fallback: Any = None) -> None:
        self.fallback = fallback or SchemaResponder()

    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any:
        handler = _which(schema) if schema else None
        if handler is not None:
            # The first user message is the rendered prompt; later ones are re-asks.
            users = [m for m in messages if m.get("role") == "user"]
            answer = handler(prompt_text(users[:1])) if users else None
            if answer is not None and fits(answer, schema):
                return answer
        return self.fallback.respond(model, messages, schema, rng)


responder = TalentResponder()
