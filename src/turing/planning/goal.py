"""Reading a goal: its parts ("..., then ..."), time filters and counts.

Time phrases become date ranges relative to `today` (UTC unless given):
"today", "yesterday", "this week" (since Monday), "since Monday" (the latest Monday, today
if it is one), "last 7 days" / "past 7 days" (the 7 days ending today), "since 2026-11-01".
Counts: "top 5", "5 best", "best 5", "first 5" (a count input; "first 100" and "at most 100"
limit the rows when there is none). Recognised phrases are removed from the text that is
matched against workflows, so "today" never makes a workflow look relevant.

Conditions that would narrow the rows in ways a plan cannot say from words ("for urgent ones",
"only ...", "that are ...", "whose ...", "where ...", "more than ...", "except ...") are kept
on the clause (`conditions`, `qualifiers`) so the planner refuses rather than running on every
row; orderings it cannot honour ("newest first", "sorted by ...") are kept as `ignored`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SPLIT = re.compile(
    r"\s*(?:;|\.\s+|,?\s*\band then\b|,?\s*\bthen\b|,?\s*\bafter that\b|,?\s*\bafterwards\b"
    r"|,?\s*\bfinally\b|,?\s*\bafter\s+(?=\w+ing\b))\s*",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100,
}  # fmt: skip
_NUM = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
_COUNT = re.compile(
    rf"\b(top|best|first|at most|up to)\s+{_NUM}\b|\b{_NUM}\s+(?:best|top)\b", re.IGNORECASE
)
_ISO = r"(\d{4}-\d{2}-\d{2})"
_TIME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?:fetched\s+|created\s+|added\s+)?(?:since|after|from)\s+{_ISO}\b",
                re.I), "iso"),
    (re.compile(r"\b(?:fetched\s+|created\s+|added\s+)?(?:in\s+the\s+)?(?:last|past)\s+"
                rf"{_NUM}\s+days?\b", re.I), "days"),
    (re.compile(r"\b(?:fetched\s+|created\s+|added\s+)?(?:since|from)\s+(?:last\s+)?("
                + "|".join(_WEEKDAYS) + r")\b", re.I), "weekday"),
    (re.compile(r"\b(?:fetched\s+|created\s+|added\s+)?this\s+week\b", re.I), "week"),
    (re.compile(r"\b(?:fetched\s+|created\s+|added\s+)?yesterday\b", re.I), "yesterday"),
    (re.compile(r"\b(?:fetched\s+|created\s+|added\s+)?today(?:'s)?\b", re.I), "today"),
]  # fmt: skip


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBER_WORDS[text.lower()]


@dataclass(frozen=True)
class TimeRange:
    """`since` inclusive, `before` exclusive (either may be None), and the words it came from."""

    phrase: str
    since: dt.date | None = None
    before: dt.date | None = None

    def describe(self) -> str:
        parts = []
        if self.since:
            parts.append(f"from {self.since.isoformat()}")
        if self.before:
            parts.append(f"before {self.before.isoformat()}")
        return f"{self.phrase!r} = " + " ".join(parts)


@dataclass(frozen=True)
class Clause:
    """One part of a goal: the words left to match, and what was recognised in it."""

    text: str
    words: str
    time: TimeRange | None = None
    count: int | None = None  # "top 5": the workflow's count input
    # "extract skills from profiles and from jobs": the part read as two pieces of work, if
    # the planner finds a different workflow for each (else the whole part is one)
    pieces: tuple[Clause, ...] = ()
    # the first piece was a whole request; otherwise ("extract skills and reasoning from
    # jobs") each piece must name its workflow unambiguously to count as separate work
    pieces_whole: bool = False
    first: int | None = None  # "first 100 jobs": no count input -> at most that many rows
    # phrases that narrow the rows ("urgent ones", "that are open"): never silently dropped
    conditions: tuple[str, ...] = ()
    # adjectives that narrow the rows unless the workflow itself is about them ("urgent")
    qualifiers: tuple[str, ...] = ()
    # phrases a plan cannot honour and that change no row ("newest first"): said in notes
    ignored: tuple[str, ...] = ()


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def split_goal(goal: str, today: dt.date | None = None) -> list[Clause]:
    today = today or today_utc()
    out = []
    for raw in _SPLIT.split(goal.strip().rstrip(".")):
        part = raw.strip(" ,")
        if not part:
            continue
        clause = _clause(part, today)
        halves = [h.strip(" ,") for h in _AND.split(part) if h.strip(" ,")]
        lead = _LEAD.match(halves[0])  # a whole first request ("X from Y")
        if len(halves) > 1:
            # "extract skills from jobs and (from) profiles": the later halves borrow the verb
            pieces = [_clause(halves[0], today)]
            for half in halves[1:]:
                text = half
                if lead and _PREPOSITION.match(half):
                    text = f"{lead.group(1)} {half}"
                elif lead and len(half.split()) <= 3:
                    text = f"{lead.group(1)} {lead.group(2)} {half}"
                pieces.append(_clause(text, today))
            clause = replace(clause, pieces=tuple(pieces), pieces_whole=bool(lead))
        out.append(clause)
    return out


_AND = re.compile(r",?\s+\band\s+(?:also\s+|then\s+)?", re.IGNORECASE)
_PREPOSITION = re.compile(r"^(?:from|for|of|in|on|about)\b", re.IGNORECASE)
_LEAD = re.compile(r"^(.+?)\s+(from|for|of|in|on|about)\b", re.IGNORECASE)


def _clause(part: str, today: dt.date) -> Clause:
    words, time = _time(part, today)
    count = first = None
    found = _COUNT.search(words)
    if found:
        count = _number(found.group(2) or found.group(3))
        if (found.group(1) or "").lower() in ("first", "at most", "up to"):
            first = count  # a count input if the workflow has one, else a row limit
        words = words[: found.start()] + " " + words[found.end() :]
    conditions = tuple(_phrase(m) for p in _CONDITIONS for m in p.finditer(words))
    qualifiers = tuple(m.group(0).lower() for m in _QUALIFIERS.finditer(words))
    ignored = tuple(_phrase(m) for m in _ORDERINGS.finditer(words))
    return Clause(
        part, " ".join(words.split()), time, count, first=first,
        conditions=conditions, qualifiers=qualifiers, ignored=ignored,
    )  # fmt: skip


def _phrase(found: re.Match[str]) -> str:
    return " ".join(found.group(0).split())


_W = r"[\w'-]+"
# Each narrows the rows to some of them; the offline planner cannot turn it into a filter.
_CONDITIONS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"\b(?!the\b|all\b|each\b|these\b|those\b){_W}\s+ones\b",  # "urgent ones"
        rf"\b(?:only|just|solely|exclusively)\b(?:\s+{_W}){{1,3}}",
        rf"\b(?:that|which|who)\s+(?:are|is|were|was|have|has|had|contain\w*|mention\w*"
        rf"|need\w*|lack\w*|include\w*|come\w*|belong\w*)\b(?:\s+{_W}){{0,3}}",
        rf"\b(?:whose|where|unless|except|excluding|but not|if|when|whenever|provided)\b"
        rf"(?:\s+{_W}){{0,3}}",
        rf"\b(?:more|less|fewer|greater|longer|shorter|higher|lower|older|newer|bigger|smaller)"
        rf"\s+than\b(?:\s+{_W}){{0,2}}",
        r"\b(?:over|above|under|below|at least|no more than|exceeding)\s+[$€£]?\d[\w.,'-]*",
        r"\b(?:high|low|top|medium|normal)[ -]priority\b",
        rf"\bwith(?:out)?\s+(?:no\s+)?(?:{_W}\s+)?(?:priority|status|rating|score|label|tag)\b"
        rf"(?:\s+{_W}){{0,2}}",
        r"\b(?:not yet|not already|never)\b(?:\s+[\w'-]+){0,2}",
    )
)
# Adjectives that pick some rows out of all of them ("urgent tickets"), unless the chosen
# workflow is itself about them (a workflow that triages urgent tickets).
_QUALIFIERS = re.compile(
    r"\b(?:urgent|important|critical|unread|unanswered|unresolved|overdue|flagged|starred|"
    r"vip|premium|angry|negative|positive|spam|senior|junior|recent|stale|open|closed|"
    r"active|inactive|escalated|late)\b",
    re.IGNORECASE,
)
# Orderings: a plan runs every selected row, in no order a goal can choose.
_ORDERINGS = re.compile(
    rf"\b(?:newest|oldest|latest|earliest|biggest|smallest|most \w+|least \w+)\s+first\b"
    rf"|\b(?:sorted|ordered|ranked)\s+by(?:\s+{_W}){{1,2}}|\bin order of(?:\s+{_W}){{1,2}}",
    re.IGNORECASE,
)


def _time(text: str, today: dt.date) -> tuple[str, TimeRange | None]:
    for pattern, kind in _TIME_PATTERNS:
        found = pattern.search(text)
        if not found:
            continue
        phrase = found.group(0).strip()
        rest = text[: found.start()] + " " + text[found.end() :]
        if kind == "iso":
            try:
                since = dt.date.fromisoformat(found.group(1))
            except ValueError:
                continue
            return rest, TimeRange(phrase, since)
        if kind == "days":
            days = _number(found.group(1))
            return rest, TimeRange(phrase, today - dt.timedelta(days=max(days, 1) - 1))
        if kind == "weekday":
            wanted = _WEEKDAYS.index(found.group(1).lower())
            back = (today.weekday() - wanted) % 7
            return rest, TimeRange(phrase, today - dt.timedelta(days=back))
        if kind == "week":
            return rest, TimeRange(phrase, today - dt.timedelta(days=today.weekday()))
        if kind == "yesterday":
            return rest, TimeRange(phrase, today - dt.timedelta(days=1), today)
        return rest, TimeRange(phrase, today)
    return text, None
