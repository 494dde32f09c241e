"""Document layout for extraction: lines, section headers, skill mentions, quoted snippets."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from talent.taxonomy import Mention, load_taxonomy

MAX_EVIDENCE = 200

BULLET = re.compile(r"^\s*(?:[-*•–·▪]|\d{1,2}[.)])\s+")
YEARS = re.compile(
    r"\b(\d{1,2})\s*(?:\+|plus)?\s*(?:(?:-|–|to)\s*\d{1,2}\s*\+?\s*)?(?:or more\s+)?"
    r"(?:years?|yrs?)\b",
    re.IGNORECASE,
)
SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+")


@dataclass
class Line:
    """One line of a document with the section it belongs to."""

    text: str
    start: int
    section: str
    header: str | None


@dataclass
class Found:
    """Everything known about one skill in one document."""

    mentions: list[tuple[Mention, Line]] = field(default_factory=list)
    years: int | None = None

    def sections(self) -> set[str]:
        return {line.section for _, line in self.mentions}

    def first_in(self, *sections: str) -> tuple[Mention, Line] | None:
        for section in sections:
            for mention, line in self.mentions:
                if line.section == section:
                    return mention, line
        return None


def split_lines(text: str) -> Iterable[tuple[int, str]]:
    offset = 0
    for raw in text.splitlines(keepends=True):
        yield offset, raw.rstrip("\r\n")
        offset += len(raw)


def header_parts(line: str) -> tuple[str, str] | None:
    """(label, inline rest) when a line could be a section header, else None."""
    stripped = line.strip()
    if not stripped or BULLET.match(line):
        return None
    core = stripped.lstrip("#").strip().strip("*_").strip()
    label, _, rest = core.partition(":")
    label = label.strip().strip("*_").strip()
    if not label or len(label) > 60 or len(label.split()) > 8:
        return None
    return label, rest.strip()


def locate(mentions: list[Mention], lines: list[Line]) -> list[tuple[Mention, Line]]:
    starts = [line.start for line in lines]
    return [(m, lines[bisect_right(starts, m.start) - 1]) for m in mentions]


def gather(text: str, lines: list[Line]) -> dict[str, Found]:
    found: dict[str, Found] = {}
    for mention, line in locate(load_taxonomy().find(text), lines):
        found.setdefault(mention.skill, Found()).mentions.append((mention, line))
    return found


def snippet(text: str, mention: Mention, line: Line, limit: int = MAX_EVIDENCE) -> str:
    """The sentence around a mention, verbatim from ``text`` (bullet stripped, clipped)."""
    lo, hi = line.start, line.start + len(line.text)
    bullet = BULLET.match(line.text)
    if bullet:
        lo += bullet.end()
    for brk in SENTENCE_BREAK.finditer(text, lo, hi):
        if brk.end() <= mention.start:
            lo = brk.end()
        elif brk.start() >= mention.end:
            hi = brk.start()
            break
    if hi - lo > limit:
        lo = max(lo, min(mention.start - limit // 3, hi - limit))
        hi = min(hi, lo + limit)
    return text[lo:hi].strip()


CV_HEADERS = {
    "summary": "summary|profile|about|about me|professional summary|professional profile|objective"
    "|career objective|personal statement|overview",
    "experience": "experience|work experience|professional experience|employment history"
    "|employment|work history|career history|relevant experience",
    "skills": "skills|core skills|technical skills|key skills|skills & tools|skills and tools"
    "|competencies|core competencies|expertise|technologies|tech stack|skills & expertise",
    "education": "education|education & training|education and training|academic background",
    "other": "languages|certifications|certificates|interests|hobbies|projects|references"
    "|publications|awards|volunteering|courses|training",
}
CV_SECTION = {label: kind for kind, labels in CV_HEADERS.items() for label in labels.split("|")}


def cv_lines(cv_text: str) -> list[Line]:
    """Lines labelled head / summary / experience / skills / education / other."""
    lines: list[Line] = []
    section = "head"
    for start, text in split_lines(cv_text):
        parts = header_parts(text)
        if parts is not None:
            kind = CV_SECTION.get(" ".join(parts[0].casefold().split()))
            section = kind or section
        lines.append(Line(text, start, section, None))
    return lines
