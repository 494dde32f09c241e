"""Shared building blocks for the sample-data writers: data files, helpers, skill surfaces."""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from talent.taxonomy import load_taxonomy

DATA_DIR = Path(__file__).with_name("data")


@cache
def load_data() -> dict[str, Any]:
    names = ("families", "world", "templates")
    return {n: json.loads((DATA_DIR / f"{n}.json").read_text(encoding="utf-8")) for n in names}


def families() -> list[dict[str, Any]]:
    """Job family definitions (titles, skill pools, phrases) from ``data/families.json``."""
    return list(load_data()["families"]["families"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resolve_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _join(items: Sequence[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text.lower()).split())


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z suffix: sorts and compares correctly as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_now(now: datetime | None) -> datetime:
    """``now`` as aware UTC; by default the current time rounded down to the minute."""
    if now is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def join(items: Sequence[str], last: str = "and") -> str:
    """English list: "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def slug(text: str) -> str:
    """ASCII, lower-case, dash-separated: for urls and email addresses."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text.lower()).split())


class Writer:
    """Shared helpers for writing text that mentions skills."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tx = load_taxonomy()
        self.t: dict[str, list[str]] = load_data()["templates"]
        self.world: dict[str, Any] = load_data()["world"]
        meta = load_data()["families"]
        self.soft: list[str] = meta["soft_skills"]
        self.certs: set[str] = set(meta["certifications"])

    def surface(self, skill: str, *, leading: bool = False) -> str:
        """How a skill is written: usually its name, sometimes an alias ("Postgres", "k8s")."""
        entry = self.tx.get(skill)
        options = [a for a in entry.aliases if "," not in a] if entry else []
        text = skill
        if options and self.rng.random() >= 0.72:  # the first alias is the common one
            text = options[0] if self.rng.random() < 0.6 else self.rng.choice(options)
        if skill in self.soft and self.rng.random() < 0.6:
            text = text.lower()
        if leading and text == "Go":  # "Go" opening a sentence is ambiguous by design
            text = "Golang"
        return text

    def pick(self, pool: Sequence[str], k: int, taken: set[str]) -> list[str]:
        """Up to ``k`` skills of ``pool`` not taken yet (and marks them taken)."""
        free = [s for s in pool if s not in taken]
        chosen = self.rng.sample(free, min(k, len(free)))
        taken.update(chosen)
        return chosen

    def companies(self, sectors: Sequence[str], k: int) -> list[str]:
        """``k`` distinct employers, from the given sectors while they last."""
        everyone = [c["name"] for c in self.world["companies"]]
        pool = [c["name"] for c in self.world["companies"] if c["sector"] in sectors]
        if len(pool) < k:
            pool += [name for name in everyone if name not in pool]
        return self.rng.sample(pool, k)

    def title(
        self, family: dict[str, Any], level: str, allowed: set[str]
    ) -> tuple[str, str | None]:
        """A title for the family; a ``{skill}`` title is only used with an allowed skill."""
        skills = [s for s in family["title_skills"] if s in allowed]
        bases = [b for b in family["titles"] if "{skill}" not in b or skills]
        base = self.rng.choice(bases)
        skill = self.rng.choice(skills) if "{skill}" in base else None
        if skill is not None:
            entry = self.tx.get(skill)
            acronyms = [a for a in entry.aliases if a.isupper() and len(a) <= 5] if entry else []
            base = base.replace("{skill}", self.rng.choice([skill, *acronyms[:1]]))
        return f"{level} {base}".strip(), skill
