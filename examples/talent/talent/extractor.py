"""Deterministic offline extraction: "the model when there is no model".

Pure functions over text (no database, no randomness) that return the same JSON-able shapes
the talent workflows' contracts expect from a model. They rely on the taxonomy matcher for
skills and on document layout for meaning:

* postings: the section a skill appears in decides its importance ("Requirements" ->
  required, "Nice to have" -> nice_to_have, anywhere else -> preferred; a skill named only in
  the title is required). A "5+ years" phrase belongs to the nearest skill in the same
  sentence. Reasoning always quotes text that occurs verbatim in the posting, so a grader can
  check it.
* CVs: section headers (Summary, Experience, Skills, Education...) are recognised by name;
  a skill listed under Skills *and* used in Experience gets the highest confidence.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

from talent._cvparse import parse_cv
from talent._layout import (
    BULLET,
    SENTENCE_BREAK,
    YEARS,
    Found,
    Line,
    cv_lines,
    gather,
    header_parts,
    snippet,
    split_lines,
)
from talent.taxonomy import Mention, load_taxonomy

__all__ = [
    "PROFICIENCIES",
    "extract_posting_skills",
    "extract_profile_skills",
    "extract_profile_skills_legacy",
    "parse_cv",
]

PROFICIENCIES = ("beginner", "intermediate", "advanced", "expert")
# Header vocabulary, matched anywhere in a lower-cased header label.
_NICE_HEADER = re.compile(
    r"nice.to.have|bonus|a plus|extra credit|(?:good|great) to have|preferred qualif|desirable"
    r"|optional"
)
_REQUIRED_HEADER = re.compile(
    r"requirement|must.have|you(?:'ll| will)? need|looking for|your profile|qualifications"
    r"|required|what you bring|who you are|you have|essential|minimum"
)
_OTHER_HEADER = re.compile(
    r"about|role|responsibilit|what you(?:'ll| will) do|mission|work on|offer|benefit|perk"
    r"|why join|in it for you|apply|the team|the job|overview|description|location|salary"
)


def _posting_section(label: str) -> str:
    lowered = label.casefold()
    if _NICE_HEADER.search(lowered):
        return "nice_to_have"
    if _REQUIRED_HEADER.search(lowered):
        return "required"
    return "other"


def _posting_header(text: str) -> str | None:
    """The label of a section header line ("Requirements:", "## Nice to have"), else None."""
    parts = header_parts(text)
    if parts is None or parts[0].endswith((".", "!", "?")):
        return None
    label, rest = parts
    lowered = label.casefold()
    if any(p.search(lowered) for p in (_NICE_HEADER, _REQUIRED_HEADER, _OTHER_HEADER)):
        return label  # a known header, possibly with inline content ("Requirements: Python")
    if not rest and (text.rstrip().endswith(":") or text.lstrip().startswith("#")):
        return label  # an unknown header: starts an "other" section
    return None


def _posting_lines(description: str) -> list[Line]:
    """Lines labelled required / nice_to_have / other by the headers above them."""
    lines: list[Line] = []
    section, header, after_blank = "other", None, False
    for start, text in split_lines(description):
        if not text.strip():
            after_blank = True
            lines.append(Line(text, start, section, header))
            continue
        label = _posting_header(text)
        if label is not None:
            section, header = _posting_section(label), label
        elif after_blank and not BULLET.match(text):
            section, header = "other", None  # a new untitled paragraph ends the last section
        after_blank = False
        lines.append(Line(text, start, section, header))
    return lines


def _assign_years(text: str, lines: list[Line], found: dict[str, Found]) -> None:
    """Give each mention the nearest "N years" phrase of its own sentence."""
    by_line: dict[int, list[tuple[str, Mention]]] = {}
    for name, info in found.items():
        for mention, line in info.mentions:
            by_line.setdefault(line.start, []).append((name, mention))
    for line in lines:
        if line.start not in by_line:
            continue
        end = line.start + len(line.text)
        bounds = [line.start, *(m.end() for m in SENTENCE_BREAK.finditer(text, line.start, end))]
        phrases: dict[int, list[tuple[int, int]]] = {}  # sentence -> [(position, years)]
        for match in YEARS.finditer(text, line.start, end):
            if int(match.group(1)) <= 30:
                sentence = bisect_right(bounds, match.start())
                phrases.setdefault(sentence, []).append((match.start(), int(match.group(1))))
        for name, mention in by_line[line.start]:
            candidates = phrases.get(bisect_right(bounds, mention.start))
            if candidates:
                i = bisect_right(candidates, (mention.start, 0))  # phrases are in text order
                near = candidates[max(0, i - 1) : i + 1]
                years = min((abs(pos - mention.start), n) for pos, n in near)[1]
                current = found[name].years
                found[name].years = years if current is None else max(current, years)


def _seniority(title: str) -> int:
    """0 junior, 1 mid, 2 senior, 3 lead and above (from words in the title)."""
    words = set(re.findall(r"[a-z]+", title.casefold()))
    if words & {"intern", "junior", "jr", "trainee", "graduate", "entry", "apprentice"}:
        return 0
    if words & {"principal", "lead", "head", "director", "chief", "architect", "vp", "group"}:
        return 3
    if "staff" in words and words & {"engineer", "scientist", "designer", "developer"}:
        return 3
    if words & {"senior", "sr"}:
        return 2
    return 1


def _proficiency(importance: str, years: int | None, level: int) -> str:
    if years is not None:
        return PROFICIENCIES[3 if years >= 8 else 2 if years >= 5 else 1 if years >= 2 else 0]
    if importance == "nice_to_have":
        level -= 1
    return PROFICIENCIES[max(0, min(3, level))]


def _posting_skill(
    name: str, info: Found, description: str, title: str, in_title: bool
) -> dict[str, Any]:
    sections = info.sections()
    if "required" in sections:
        importance = "required"
    elif "nice_to_have" in sections:
        importance = "nice_to_have"
    else:
        importance = "preferred"
    weight = {"required": 70, "preferred": 45, "nice_to_have": 25}[importance]
    weight += (
        5 * min(max(len(info.mentions) - 1, 0), 3) + 10 * in_title + 5 * (info.years is not None)
    )
    where = info.first_in({"preferred": "other"}.get(importance, importance))
    if where is None:  # named only in the title
        importance = "required"
        reasoning = f'Named in the job title "{title[:200]}".'
    else:
        mention, line = where
        place = f'under "{line.header}"' if line.header else "in the description"
        verb = {"required": "Listed as required", "nice_to_have": "Listed as nice to have"}
        reasoning = (
            f'{verb.get(importance, "Mentioned")} {place}: "{snippet(description, mention, line)}"'
        )
        if info.years is not None:
            reasoning += f"; asks for {info.years}+ years"
        if in_title:
            reasoning += f'; also named in the title "{title[:120]}"'
        reasoning += "."
    return {
        "name": name,
        "importance": importance,
        "weight": max(10, min(100, weight)),
        "proficiency": _proficiency(importance, info.years, _seniority(title)),
        "years_required": info.years,
        "reasoning": reasoning[:500],
    }


def extract_posting_skills(posting_id: int, title: str, description: str) -> dict[str, Any]:
    """Skills a posting asks for, with importance, weight, proficiency, years and reasoning."""
    lines = _posting_lines(description)
    found = gather(description, lines)
    _assign_years(description, lines, found)
    title_skills = set(load_taxonomy().skills_in(title))
    for name in title_skills - found.keys():
        found[name] = Found()
    skills = [
        _posting_skill(name, info, description, title, name in title_skills)
        for name, info in found.items()
    ]
    skills.sort(key=lambda s: (-s["weight"], s["name"]))
    return {"posting_id": posting_id, "skills": skills[:60]}


def _profile_confidence(sections: set[str]) -> float:
    in_summary = bool(sections & {"head", "summary"})
    if {"skills", "experience"} <= sections:
        return 0.95
    if "skills" in sections:
        return 0.85 if in_summary else 0.8
    if "experience" in sections:
        return 0.8 if in_summary else 0.75
    if in_summary:
        return 0.6
    if "other" in sections:
        return 0.55
    return 0.35


def extract_profile_skills(profile_id: int, cv_text: str) -> dict[str, Any]:
    """Skills a CV shows, each with a confidence and the line that shows it."""
    found = gather(cv_text, cv_lines(cv_text))
    skills: list[dict[str, Any]] = []
    for name, info in found.items():
        best = info.first_in("experience", "skills", "summary", "head", "other", "education")
        assert best is not None
        mention, line = best
        skills.append(
            {
                "name": name,
                "confidence": _profile_confidence(info.sections()),
                "evidence": snippet(cv_text, mention, line) or mention.surface,
            }
        )
    skills.sort(key=lambda s: (-s["confidence"], s["name"]))
    return {"profile_id": profile_id, "skills": skills[:80]}


def extract_profile_skills_legacy(profile_id: int, cv_text: str) -> dict[str, Any]:
    """The legacy shape: just the sorted canonical skill names found in a CV."""
    return {"profile_id": profile_id, "skills": sorted(load_taxonomy().skills_in(cv_text))[:80]}
