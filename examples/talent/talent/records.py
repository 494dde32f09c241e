"""Generated records and the ground truth they were written from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMPORTANCES = ("required", "preferred", "nice_to_have")


@dataclass(frozen=True)
class TrueSkill:
    """A skill the generator wrote into a posting, with the importance it meant."""

    name: str
    importance: str
    years: int | None = None


@dataclass(frozen=True)
class Posting:
    posting_id: int
    title: str
    company: str
    location: str
    family: str
    seniority: str
    description: str
    url: str
    fetched_at: str
    skills: tuple[TrueSkill, ...]


@dataclass(frozen=True)
class Profile:
    profile_id: int
    full_name: str
    email: str
    headline: str
    location: str
    years_experience: int
    cv_text: str
    created_at: str
    family: str
    skills: tuple[str, ...]
    experience: tuple[dict[str, Any], ...]
    education: tuple[dict[str, Any], ...]

    def expected_parse(self) -> dict[str, Any]:
        """What ``extractor.parse_cv`` must return for this CV."""
        return {
            "full_name": self.full_name,
            "email": self.email,
            "location": self.location,
            "headline": self.headline,
            "years_experience": self.years_experience,
            "skills": list(self.skills),
            "experience": [dict(role) for role in self.experience],
            "education": [dict(degree) for degree in self.education],
        }
