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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from talent.taxonomy import Mention, load_taxonomy

PROFICIENCIES = ("beginner", "intermediate", "advanced", "expert")
MAX_EVIDENCE = 200

_BULLET = re.compile(r"^\s*(?:[-*•–·▪]|\d{1,2}[.)])\s+")
_YEARS = re.compile(
    r"\b(\d{1,2})\s*(?:\+|plus)?\s*(?:(?:-|–|to)\s*\d{1,2}\s*\+?\s*)?(?:or more\s+)?"
    r"(?:years?|yrs?)\b",
    re.IGNORECASE,
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+")
_NICE_WORDS = ("nice to have", "nice-to-have", "bonus", "a plus", "extra credit", "good to have")
_NICE_WORDS += ("great to have", "preferred qualifications", "desirable", "optional")
_REQUIRED_WORDS = ("requirement", "must have", "must-have", "you'll need", "you will need")
_REQUIRED_WORDS += ("what you need", "looking for", "your profile", "qualifications", "required")
_REQUIRED_WORDS += ("what you bring", "who you are", "you have", "essential", "minimum")
_OTHER_WORDS = ("about", "role", "responsibilit", "what you'll do", "what you will do", "mission")
_OTHER_WORDS += ("work on", "offer", "benefit", "perk", "why join", "in it for you", "apply")
_OTHER_WORDS += ("the team", "the job", "overview", "description", "location", "salary")


@dataclass
class _Line:
    """One line of a document with the section it belongs to."""

    text: str
    start: int
    section: str
    header: str | None


@dataclass
class _Found:
    """Everything known about one skill in one document."""

    mentions: list[tuple[Mention, _Line]] = field(default_factory=list)
    years: int | None = None

    def sections(self) -> set[str]:
        return {line.section for _, line in self.mentions}

    def first_in(self, *sections: str) -> tuple[Mention, _Line] | None:
        for section in sections:
            for mention, line in self.mentions:
                if line.section == section:
                    return mention, line
        return None


# --- shared helpers ------------------------------------------------------------------------


def _split_lines(text: str) -> Iterable[tuple[int, str]]:
    offset = 0
    for raw in text.splitlines(keepends=True):
        yield offset, raw.rstrip("\r\n")
        offset += len(raw)


def _header_parts(line: str) -> tuple[str, str] | None:
    """(label, inline rest) when a line could be a section header, else None."""
    stripped = line.strip()
    if not stripped or _BULLET.match(line):
        return None
    core = stripped.lstrip("#").strip().strip("*_").strip()
    label, _, rest = core.partition(":")
    label = label.strip().strip("*_").strip()
    if not label or len(label) > 60 or len(label.split()) > 8:
        return None
    return label, rest.strip()


def _locate(mentions: list[Mention], lines: list[_Line]) -> list[tuple[Mention, _Line]]:
    starts = [line.start for line in lines]
    return [(m, lines[bisect_right(starts, m.start) - 1]) for m in mentions]


def _gather(text: str, lines: list[_Line]) -> dict[str, _Found]:
    found: dict[str, _Found] = {}
    for mention, line in _locate(load_taxonomy().find(text), lines):
        found.setdefault(mention.skill, _Found()).mentions.append((mention, line))
    return found


def _snippet(text: str, mention: Mention, line: _Line, limit: int = MAX_EVIDENCE) -> str:
    """The sentence around a mention, verbatim from ``text`` (bullet stripped, clipped)."""
    lo, hi = line.start, line.start + len(line.text)
    bullet = _BULLET.match(line.text)
    if bullet:
        lo += bullet.end()
    for brk in _SENTENCE_BREAK.finditer(text, lo, hi):
        if brk.end() <= mention.start:
            lo = brk.end()
        elif brk.start() >= mention.end:
            hi = brk.start()
            break
    if hi - lo > limit:
        lo = max(lo, min(mention.start - limit // 3, hi - limit))
        hi = min(hi, lo + limit)
    return text[lo:hi].strip()


# --- postings ------------------------------------------------------------------------------


def _posting_section(label: str) -> str:
    lowered = label.casefold()
    if any(word in lowered for word in _NICE_WORDS):
        return "nice_to_have"
    if any(word in lowered for word in _REQUIRED_WORDS):
        return "required"
    return "other"


def _posting_header(text: str) -> str | None:
    """The label of a section header line ("Requirements:", "## Nice to have"), else None."""
    parts = _header_parts(text)
    if parts is None or parts[0].endswith((".", "!", "?")):
        return None
    label, rest = parts
    lowered = label.casefold()
    if any(word in lowered for word in _NICE_WORDS + _REQUIRED_WORDS + _OTHER_WORDS):
        return label  # a known header, possibly with inline content ("Requirements: Python")
    if not rest and (text.rstrip().endswith(":") or text.lstrip().startswith("#")):
        return label  # an unknown header: starts an "other" section
    return None


def _posting_lines(description: str) -> list[_Line]:
    """Lines labelled required / nice_to_have / other by the headers above them."""
    lines: list[_Line] = []
    section, header, after_blank = "other", None, False
    for start, text in _split_lines(description):
        if not text.strip():
            after_blank = True
            lines.append(_Line(text, start, section, header))
            continue
        label = _posting_header(text)
        if label is not None:
            section, header = _posting_section(label), label
        elif after_blank and not _BULLET.match(text):
            section, header = "other", None  # a new untitled paragraph ends the last section
        after_blank = False
        lines.append(_Line(text, start, section, header))
    return lines


def _assign_years(text: str, lines: list[_Line], found: dict[str, _Found]) -> None:
    """Give each mention the nearest "N years" phrase of its own sentence."""
    by_line: dict[int, list[tuple[str, Mention]]] = {}
    for name, info in found.items():
        for mention, line in info.mentions:
            by_line.setdefault(line.start, []).append((name, mention))
    for line in lines:
        if line.start not in by_line:
            continue
        end = line.start + len(line.text)
        bounds = [line.start, *(m.end() for m in _SENTENCE_BREAK.finditer(text, line.start, end))]
        phrases = [
            (m.start(), int(m.group(1)))
            for m in _YEARS.finditer(text, line.start, end)
            if int(m.group(1)) <= 30
        ]
        for name, mention in by_line[line.start]:
            sentence = bisect_right(bounds, mention.start)
            same = [
                (abs(pos - mention.start), n)
                for pos, n in phrases
                if bisect_right(bounds, pos) == sentence
            ]
            if same:
                years = min(same)[1]
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
    name: str, info: _Found, description: str, title: str, in_title: bool
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
            f'{verb.get(importance, "Mentioned")} {place}: "{_snippet(description, mention, line)}"'
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
    found = _gather(description, lines)
    _assign_years(description, lines, found)
    title_skills = set(load_taxonomy().skills_in(title))
    for name in title_skills - found.keys():
        found[name] = _Found()
    skills = [
        _posting_skill(name, info, description, title, name in title_skills)
        for name, info in found.items()
    ]
    skills.sort(key=lambda s: (-s["weight"], s["name"]))
    return {"posting_id": posting_id, "skills": skills[:60]}


# --- CVs -----------------------------------------------------------------------------------

_CV_HEADERS = {
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
_CV_SECTION = {label: kind for kind, labels in _CV_HEADERS.items() for label in labels.split("|")}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
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
    "from engineer developer manager analyst scientist designer researcher nurse teacher "
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


def _cv_lines(cv_text: str) -> list[_Line]:
    """Lines labelled head / summary / experience / skills / education / other."""
    lines: list[_Line] = []
    section = "head"
    for start, text in _split_lines(cv_text):
        parts = _header_parts(text)
        if parts is not None:
            kind = _CV_SECTION.get(" ".join(parts[0].casefold().split()))
            section = kind or section
        lines.append(_Line(text, start, section, None))
    return lines


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
    found = _gather(cv_text, _cv_lines(cv_text))
    skills = []
    for name, info in found.items():
        best = info.first_in("experience", "skills", "summary", "head", "other", "education")
        assert best is not None
        mention, line = best
        skills.append(
            {
                "name": name,
                "confidence": _profile_confidence(info.sections()),
                "evidence": _snippet(cv_text, mention, line) or mention.surface,
            }
        )
    skills.sort(key=lambda s: (-s["confidence"], s["name"]))
    return {"profile_id": profile_id, "skills": skills[:80]}


def extract_profile_skills_legacy(profile_id: int, cv_text: str) -> dict[str, Any]:
    """The legacy shape: just the sorted canonical skill names found in a CV."""
    return {"profile_id": profile_id, "skills": sorted(load_taxonomy().skills_in(cv_text))[:80]}


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


def _is_title(part: str) -> bool:
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
    out: dict[str, str | None] = {"full_name": None, "headline": None, "location": None}
    labelled = {}
    for line in head:
        label, sep, value = line.partition(":")
        if sep and label.strip().casefold() in {"name", "headline", "location", "title"}:
            labelled[label.strip().casefold()] = value.strip() or None
    out["location"] = labelled.get("location")
    out["headline"] = labelled.get("headline") or labelled.get("title")
    if labelled.get("name"):
        out["full_name"] = labelled["name"]
    for i, line in enumerate(head):
        if ":" in line and line.partition(":")[0].strip().casefold() in {
            "name", "headline", "location", "title", "email", "phone", "website", "linkedin"
        }:  # fmt: skip
            continue
        parts = [p.strip(" |·•") for p in re.split(r"\s+[|·•]\s+", line) if p.strip(" |·•")]
        contact = "@" in line or any(_is_phone(p) for p in parts)
        if contact:
            rest = [p for p in parts if "@" not in p and not _is_phone(p) and "/" not in p]
            if out["location"] is None and rest:
                out["location"] = rest[0]
            continue
        if i == 0 and out["full_name"] is None:
            name, *tail = re.split(r"\s+[—–|]\s+", line, maxsplit=1)
            headline = tail[0] if tail else ""
            if _looks_like_name(name):
                out["full_name"] = name
                out["headline"] = out["headline"] or (headline.strip() or None)
                continue
        if out["headline"] is None and i > 0 and out["full_name"] is not None:
            out["headline"] = line
    return out


def _parse_roles(lines: list[str]) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = []
    pending: str | None = None
    for raw in lines:
        line = raw.strip()
        if not line or _BULLET.match(raw):
            pending = None if _BULLET.match(raw) else pending
            continue
        match = _RANGE.search(line)
        if match is None:
            pending = line
            continue
        rest = (line[: match.start()] + line[match.end() :]).replace("()", "").strip(" ,|—–-(")
        rest = rest or (pending or "")
        pending = None
        pair = _split_pair(rest, _ROLE_SEPARATORS, _is_title)
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
        line = _BULLET.sub("", raw).strip()
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
    match = _YEARS.search(summary) or _STATED_YEARS.search(text)
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
    lines = _cv_lines(cv_text)
    by_section: dict[str, list[str]] = {}
    for line in lines:
        if line.text.strip():
            by_section.setdefault(line.section, []).append(line.text)
    head = [h.strip() for h in by_section.get("head", [])]
    parsed = _parse_head(head)
    email = _EMAIL.search("\n".join(head)) or _EMAIL.search(cv_text)
    roles = _parse_roles(by_section.get("experience", []))
    summary = "\n".join(by_section.get("summary", []))
    found = _gather(cv_text, lines)
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
