"""Skills taxonomy: canonical skills with aliases and parents, plus a free-text skill matcher.

Matching rules (skill names collide with English words and with each other, so plain
substring search is useless):

* Terms (canonical names and aliases) match case-insensitively, at boundaries that understand
  punctuation inside names: ``C++``, ``C#``, ``.NET``, ``Node.js``, ``CI/CD``, ``T-SQL``. A term
  may not touch a letter, digit, ``+``, ``#`` or ``@`` on either side, nor sit inside a dotted
  word (``js`` in ``Foo.js``), so emails and file names do not produce skills.
* The longest term wins at a position: "React Native" over "React", "Python 3" over "Python".
* Terms listed under ``exact_case`` in the data file (``Go``, ``R``, ``C``, ``Excel``, ``Spark``,
  ``REST``, ``Lean``, ``ML``...) match only with exactly that capitalisation, because their
  lower-case forms are ordinary words ("go", "excel", "spark joy", "a lean team", "5 ml").
* The single letters ``C`` and ``R`` and the word ``Go`` get extra guards: never next to
  ``&``, ``-`` or ``'`` ("R&D", "C-level", "Go-to-market"), never after words such as "Series",
  "Vitamin" or "Grade", and ``Go`` is ignored at the start of a sentence when a lower-case word
  follows ("Go beyond"). ``Golang`` is always safe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeAlias

DATA_FILE = Path(__file__).with_name("data") / "taxonomy.json"

_WS = re.compile(r"\s+")
_GUARDED = frozenset({"C", "R", "Go"})
_BAD_NEIGHBOURS = frozenset("&-'’")
_BAD_PREVIOUS_WORDS = frozenset(
    {"series", "vitamin", "grade", "plan", "type", "class", "section", "part", "tier", "level"}
)


def normalize(term: str) -> str:
    """Lookup key for a term: case-folded, trimmed, inner whitespace collapsed."""
    return _WS.sub(" ", term).strip().casefold()


@dataclass(frozen=True)
class Skill:
    """One canonical skill; ``parent`` names a broader skill of the same taxonomy."""

    name: str
    category: str
    aliases: tuple[str, ...]
    parent: str | None


@dataclass(frozen=True)
class Mention:
    """One occurrence of a skill in a text: ``text[start:end] == surface``."""

    skill: str
    surface: str
    start: int
    end: int


_Node: TypeAlias = "dict[str, _Node]"


class _Trie:
    """Character trie rendered as one regex, so matching costs one pass per text."""

    def __init__(self) -> None:
        self.root: _Node = {}

    def add(self, term: str) -> None:
        node = self.root
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(self) -> str:
        return self._render(self.root) or "(?!)"

    def _render(self, node: _Node) -> str:
        branches = [
            self._char(char) + self._render(child) for char, child in sorted(node.items()) if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a term ends here: the longer continuation is optional (tried first)
            return f"(?:{body})?"
        return body

    @staticmethod
    def _char(char: str) -> str:
        return r"[^\S\n]+" if char == " " else re.escape(char)


class Taxonomy:
    """Validated set of skills with alias lookup, parent/child navigation and text matching."""

    def __init__(self, skills: Iterable[Skill], exact_case: Iterable[str] = ()) -> None:
        self.skills: tuple[Skill, ...] = tuple(skills)
        self._by_name = {skill.name: skill for skill in self.skills}
        if len(self._by_name) != len(self.skills):
            raise ValueError("duplicate canonical skill names")
        self._lookup: dict[str, Skill] = {}
        for skill in self.skills:
            for term in (skill.name, *skill.aliases):
                other = self._lookup.setdefault(normalize(term), skill)
                if other is not skill:
                    raise ValueError(f"term {term!r} names both {other.name!r} and {skill.name!r}")
        self._children: dict[str, list[str]] = {skill.name: [] for skill in self.skills}
        for skill in self.skills:
            if skill.parent is not None:
                if skill.parent not in self._by_name:
                    raise ValueError(f"{skill.name!r} has unknown parent {skill.parent!r}")
                self._children[skill.parent].append(skill.name)
        for skill in self.skills:
            self.ancestors(skill.name)  # raises on cycles
        self._compile(set(exact_case))

    def __len__(self) -> int:
        return len(self.skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self.skills)

    def __contains__(self, name_or_alias: object) -> bool:
        return isinstance(name_or_alias, str) and self.get(name_or_alias) is not None

    def get(self, name_or_alias: str) -> Skill | None:
        """Skill for a canonical name or alias, whatever its case and spacing."""
        return self._lookup.get(normalize(name_or_alias))

    def ancestors(self, name: str) -> list[str]:
        """Parent, grandparent, ... of a skill (nearest first); empty for unknown names."""
        skill = self.get(name)
        chain: list[str] = []
        while skill is not None and skill.parent is not None:
            if skill.parent in chain or skill.parent == name:
                raise ValueError(f"parent cycle through {skill.parent!r}")
            chain.append(skill.parent)
            skill = self._by_name[skill.parent]
        return chain

    def children(self, name: str) -> list[str]:
        """Direct children of a skill, in taxonomy order."""
        skill = self.get(name)
        return list(self._children[skill.name]) if skill else []

    def find(self, text: str) -> list[Mention]:
        """Every skill mention in ``text``, in order (see the module docstring for the rules)."""
        mentions: list[Mention] = []
        for match in self._regex.finditer(text):
            group = "ci" if match.group("ci") is not None else "cs"
            surface = match.group(group)
            key = _WS.sub(" ", surface)
            name = self._ci_terms.get(key.lower()) if group == "ci" else self._cs_terms.get(key)
            if name is None or (
                key in _GUARDED and not _guard_ok(text, match.start(), match.end())
            ):
                continue
            mentions.append(Mention(name, surface, match.start(), match.end()))
        return mentions

    def skills_in(self, text: str) -> list[str]:
        """Distinct canonical skills mentioned in ``text``, in order of first mention."""
        return list(dict.fromkeys(mention.skill for mention in self.find(text)))

    def _compile(self, exact_case: set[str]) -> None:
        ci, cs = _Trie(), _Trie()
        self._ci_terms: dict[str, str] = {}
        self._cs_terms: dict[str, str] = {}
        for skill in self.skills:
            for raw in (skill.name, *skill.aliases):
                term = _WS.sub(" ", raw).strip()
                if term in exact_case:
                    cs.add(term)
                    self._cs_terms[term] = skill.name
                else:
                    ci.add(term.lower())
                    self._ci_terms[term.lower()] = skill.name
        left = r"(?<![\w@])(?<!\w\.)"
        right = r"(?![\w+#@])(?!\.\w)"
        self._regex = re.compile(
            f"{left}(?:(?P<ci>{ci.pattern()}){right}|(?-i:(?P<cs>{cs.pattern()})){right})",
            re.IGNORECASE,
        )


def _guard_ok(text: str, start: int, end: int) -> bool:
    """Extra checks for the ambiguous short terms C, R and Go."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if before in _BAD_NEIGHBOURS or after in _BAD_NEIGHBOURS:
        return False
    previous = text[max(0, start - 12) : start].split()
    if previous and previous[-1].strip(".,;:()").casefold() in _BAD_PREVIOUS_WORDS:
        return False
    if text[start:end] == "Go" and _at_sentence_start(text, start):
        following = text[end : end + 3].lstrip()
        return not following[:1].islower()
    return True


def _at_sentence_start(text: str, start: int) -> bool:
    """True when only whitespace, a bullet or sentence punctuation precedes ``start``."""
    head = text[max(0, start - 40) : start].rstrip(" \t")
    if head.endswith(("-", "*", "•")):
        head = head[:-1].rstrip(" \t")
    return not head or head[-1] in ".!?:;\n"


@cache
def load_taxonomy() -> Taxonomy:
    """The bundled taxonomy (parsed and compiled once per process)."""
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    skills = (
        Skill(s["name"], s["category"], tuple(s["aliases"]), s["parent"]) for s in data["skills"]
    )
    return Taxonomy(skills, data.get("exact_case", ()))
