"""Parsing a CV's structure: contact block, roles with years, degrees, years of experience."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from talent._layout import BULLET, YEARS, cv_lines, gather

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")  # linear on long words
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s*"
_RANGE = re.compile(
    rf"(?:{_MONTH}|\d{{1,2}}/)?((?:19|20)\d{{2}})\s*(?:-|–|—|to|until)\s*"
    rf"(?:{_MONTH}|\d{{1,2}}/)?((?:19|20)\d{{2}}|present|current|now|today|ongoing)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(19[5-9]\d|20\d{2})\b")
_STATED_YEARS = re.compile(
    r"\b(\d{1,2})\+?\s*(?:years?|yrs?)\s+(?:of\s+)?(?:\w+\s+)?experience", re.IGNORECASE
)
_DEGREE = re.compile(
    r"^(?:B\.|M\.|Ph\.?\s?D|MBA|LL\.|Bachelor|Master|Associate|Doctor|Juris|Diploma|BSc|MSc|"
    r"BEng|MEng|BA\b|MA\b|BS\b|MS\b|BSN|MSN|JD\b|PhD|Postgraduate|Abitur)|"
    r"\b(?:Degree|Diploma|Certificate)\b"
)
_ROLE_WORD_LIST = (  # job nouns: tell "Title, Company" from "Company, Title"
    "engineer developer manager analyst scientist designer researcher nurse teacher "
    "accountant bookkeeper controller recruiter partner generalist specialist coordinator "
    "planner counsel paralegal officer attorney lawyer executive representative associate "
    "lead owner marketer tester architect practitioner assistant consultant director head "
    "administrator technician intern agent strategist writer editor instructor tutor "
    "supervisor buyer programmer master founder vp president cto ceo cfo"
)
_ROLE_WORDS = frozenset(_ROLE_WORD_LIST.split())
_NAME_TOKEN = re.compile(r"^[^\W\d_][^\W\d_'’.-]*(?:['’.-][^\W\d_]*)*\.?$")
_ROLE_SEPARATORS = (" at ", " @ ", " | ", " — ", " – ", " - ", ", ")
_EDUCATION_SEPARATORS = (" | ", " — ", " – ", ", ", " - ")
_HEAD_LABELS = {"name", "headline", "title", "location", "email", "phone", "website", "linkedin"}


def _looks_like_name(text: str) -> bool:
    """2-5 letter-only words, the first and last capitalised ("Anna van der Berg")."""
    tokens = text.split()
    if not 2 <= len(tokens) <= 5 or len(text) > 80:
        return False
    return (
        tokens[0][0].isupper() and tokens[-1][0].isupper() and all(map(_NAME_TOKEN.match, tokens))
    )


def _is_phone(part: str) -> bool:
    return sum(c.isdigit() for c in part) >= 7 and all(c.isdigit() or c in " +()-./" for c in part)


def is_title(part: str) -> bool:
    """Whether a phrase names a job ("Senior Data Engineer") rather than an employer."""
    return any(word in _ROLE_WORDS for word in re.findall(r"[a-z]+", part.casefold()))


def _split_pair(
    text: str, separators: tuple[str, ...], first_is: Callable[[str], bool]
) -> tuple[str, str] | None:
    """Split "A <sep> B" and order the parts so that ``first_is(first)`` holds when it can."""
    for sep in separators:
        if sep in text:
            a, b = (p.strip(" ,|—–-()") for p in text.split(sep, 1))
            if not a or not b:
                continue
            return (b, a) if first_is(b) and not first_is(a) else (a, b)
    return None


def _parse_head(head: list[str]) -> dict[str, str | None]:
    """Name, headline and location from the lines above the first section header."""
    labelled: dict[str, str] = {}
    free: list[str] = []
    for line in head:
        label, sep, value = line.partition(":")
        key = label.strip().casefold()
        if sep and key in _HEAD_LABELS:
            labelled.setdefault(key, value.strip())
        else:
            free.append(line)
    name = labelled.get("name") or None
    headline = labelled.get("headline") or labelled.get("title") or None
    location = labelled.get("location") or None
    for i, line in enumerate(free):
        parts = [p.strip(" |·•") for p in re.split(r"\s+[|·•]\s+", line) if p.strip(" |·•")]
        if "@" in line or any(map(_is_phone, parts)):  # contact line: the leftover is a place
            rest = [p for p in parts if "@" not in p and not _is_phone(p) and "/" not in p]
            location = location or (rest[0] if rest else None)
        elif name is None and i == 0:  # "Jane Doe" or "Jane Doe — Backend Engineer"
            first, *tail = re.split(r"\s+[—–|]\s+", line, maxsplit=1)
            if _looks_like_name(first):
                name = first
                headline = headline or (tail[0].strip() if tail else None) or None
        elif headline is None and name is not None:
            headline = line
    return {"full_name": name, "headline": headline, "location": location}


def _parse_roles(lines: list[str]) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = []
    pending: str | None = None
    for raw in lines:
        line = raw.strip()
        if BULLET.match(raw):
            pending = None
            continue
        match = _RANGE.search(line)
        if match is None:
            pending = line
            continue
        rest = (line[: match.start()] + line[match.end() :]).replace("()", "").strip(" ,|—–-(")
        rest = rest or (pending or "")
        pending = None
        pair = _split_pair(rest, _ROLE_SEPARATORS, is_title)
        if pair is None:
            continue
        end = match.group(2)
        roles.append(
            {
                "title": pair[0],
                "company": pair[1],
                "start_year": int(match.group(1)),
                "end_year": int(end) if end.isdigit() else None,
            }
        )
    return roles


def _parse_education(lines: list[str]) -> list[dict[str, Any]]:
    entries = []
    for raw in lines:
        line = BULLET.sub("", raw).strip()
        years = list(_YEAR.finditer(line))
        year = int(years[-1].group(1)) if years else None
        if years:
            line = line[: years[-1].start()] + line[years[-1].end() :]
        line = line.replace("()", "").strip(" ,|—–-(")
        pair = _split_pair(line, _EDUCATION_SEPARATORS, lambda p: bool(_DEGREE.search(p)))
        if pair is not None:
            entries.append({"degree": pair[0], "institution": pair[1], "year": year})
    return entries


def _years_experience(summary: str, text: str, roles: list[dict[str, Any]]) -> int | None:
    """Stated in the summary, else stated anywhere, else the span of the listed roles."""
    match = YEARS.search(summary) or _STATED_YEARS.search(text)
    if match and int(match.group(1)) <= 60:
        return int(match.group(1))
    if not roles:
        return None
    this_year = datetime.now(UTC).year
    last = max(r["end_year"] or max(this_year, r["start_year"]) for r in roles)
    span = last - min(r["start_year"] for r in roles)
    return span if 0 <= span <= 60 else None


def parse_cv(cv_text: str) -> dict[str, Any]:
    """A structured profile from CV text; unknown parts come back as None or empty lists."""
    lines = cv_lines(cv_text)
    by_section: dict[str, list[str]] = {}
    for line in lines:
        if line.text.strip():
            by_section.setdefault(line.section, []).append(line.text)
    head = [h.strip() for h in by_section.get("head", [])]
    parsed = _parse_head(head)
    email = _EMAIL.search("\n".join(head)) or _EMAIL.search(cv_text)
    roles = _parse_roles(by_section.get("experience", []))
    summary = "\n".join(by_section.get("summary", []))
    found = gather(cv_text, lines)
    return {
        "full_name": (parsed["full_name"] or "")[:120],
        "email": email.group(0) if email else None,
        "location": parsed["location"],
        "headline": parsed["headline"],
        "years_experience": _years_experience(summary, cv_text, roles),
        "skills": sorted(n for n, info in found.items() if info.sections() != {"education"}),
        "experience": roles,
        "education": _parse_education(by_section.get("education", [])),
    }
