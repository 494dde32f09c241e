"""Contracts of the talent workflows (authored as Pydantic models)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Importance = Literal["required", "preferred", "nice_to_have"]
Proficiency = Literal["beginner", "intermediate", "advanced", "expert"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostingInput(BaseModel):
    posting_id: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1)
    company: str | None = None


class JobSkill(_Strict):
    name: str = Field(min_length=1, max_length=80)
    importance: Importance
    weight: int = Field(ge=10, le=100, description="How much the skill matters, 10-100.")
    proficiency: Proficiency
    years_required: int | None = Field(default=None, ge=0, le=30)
    reasoning: str = Field(min_length=1, max_length=500, description="Where the posting says so.")


class JobSkills(_Strict):
    posting_id: int
    skills: list[JobSkill] = Field(max_length=60)


class ProfileInput(BaseModel):
    profile_id: int = Field(ge=1)
    cv_text: str = Field(min_length=1)


class ProfileSkill(_Strict):
    name: str = Field(min_length=1, max_length=80)
    confidence: float = Field(ge=0, le=1)
    evidence: str = Field(min_length=1, max_length=300)


class ProfileSkills(_Strict):
    profile_id: int
    skills: list[ProfileSkill] = Field(max_length=80)


class LegacyProfileSkills(_Strict):
    profile_id: int
    skills: list[str] = Field(max_length=80)


class CVInput(BaseModel):
    cv_text: str = Field(min_length=20)
    source: str = "import"


class Experience(_Strict):
    title: str = Field(min_length=1)
    company: str = Field(min_length=1)
    start_year: int = Field(ge=1950, le=2100)
    end_year: int | None = Field(default=None, ge=1950, le=2100)


class Education(_Strict):
    degree: str = Field(min_length=1)
    institution: str = Field(min_length=1)
    year: int | None = Field(default=None, ge=1950, le=2100)


class ParsedCV(_Strict):
    full_name: str = Field(min_length=1, max_length=120)
    email: str | None = Field(default=None, json_schema_extra={"format": "email"})
    location: str | None = None
    headline: str | None = None
    years_experience: int | None = Field(default=None, ge=0, le=60)
    skills: list[str] = Field(default_factory=list)
    experience: list[Experience] = Field(default_factory=list)
    education: list[Education] = Field(default_factory=list)


class CheckedCV(_Strict):
    profile: ParsedCV
    warnings: list[str]


class ImportedProfile(_Strict):
    profile_id: int
    full_name: str
    skills: int = Field(ge=0, description="Number of skills recognised.")
    warnings: list[str]
    dry_run: bool


class SkillWeight(BaseModel):
    name: str = Field(min_length=1)
    weight: int = Field(ge=1, le=100)


class MatchInput(BaseModel):
    posting_id: int = Field(ge=1)
    skills: list[SkillWeight] = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=50, description="How many top candidates to return.")


class Candidate(_Strict):
    profile_id: int
    score: float = Field(ge=0, le=1)
    matched_skills: list[str]
    missing_skills: list[str]


class Matches(_Strict):
    posting_id: int
    matches: list[Candidate]
    candidates_considered: int = Field(ge=0)
    scored_from_cv_text: int = Field(
        ge=0,
        description="Candidates without extracted skills, scored by a taxonomy scan of the CV.",
    )
