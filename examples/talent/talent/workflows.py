"""The talent workflows: skills from postings and profiles, profile import, matching.

Aliases keep the numbers of the system Turing replaces (1121, 2002, 1122, 1126). The LLM
steps name logical actors (`skills_extractor`, `cv_parser`) that turing.toml maps to the
offline extractor or to a real model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from talent import contracts as c
from talent import scripts
from talent.actors import OfflineExtractor
from talent.taxonomy import load_taxonomy
from turing import LLMStep, ScriptStep, Sink, Source, SourceFilter, Workflow
from turing.checks import custom, grounded, one_of

SYSTEM = (
    "You are a precise information extraction engine for a recruiting platform. "
    "Answer with one JSON object that satisfies the given JSON Schema and nothing else."
)

# How a plan may narrow the posting sources ("jobs fetched today", "since Monday").
POSTING_FILTERS = {
    "fetched_since": SourceFilter(
        "fetched_at", ">=", "date", "Only postings fetched on or after this day (UTC)."
    ),
    "fetched_before": SourceFilter(
        "fetched_at", "<", "date", "Only postings fetched before this day (UTC)."
    ),
}

# Postings that have skills but no matches yet, with their skills as the match input, in
# skill-name order (byte order) on both engines: SQLite reads them along the primary key
# (posting_id, skill), PostgreSQL is told to, so both give the same input and matches.
MATCH_SOURCE = {
    "sqlite": "SELECT p.posting_id, p.fetched_at,"
    " (SELECT json_group_array(json_object('name', s.skill, 'weight', s.weight))"
    " FROM posting_skills s WHERE s.posting_id = p.posting_id) AS skills"
    " FROM postings p"
    " WHERE EXISTS (SELECT 1 FROM posting_skills s WHERE s.posting_id = p.posting_id)"
    " AND NOT EXISTS (SELECT 1 FROM posting_matches m WHERE m.posting_id = p.posting_id)"
    " ORDER BY p.posting_id",
    "postgres": "SELECT p.posting_id, p.fetched_at,"
    " (SELECT json_agg(json_build_object('name', s.skill, 'weight', s.weight)"
    ' ORDER BY s.skill COLLATE "C")'
    " FROM posting_skills s WHERE s.posting_id = p.posting_id) AS skills"
    " FROM postings p"
    " WHERE EXISTS (SELECT 1 FROM posting_skills s WHERE s.posting_id = p.posting_id)"
    " AND NOT EXISTS (SELECT 1 FROM posting_matches m WHERE m.posting_id = p.posting_id)"
    " ORDER BY p.posting_id",
}

# Checks (docs/quality.md): a schema-valid answer can still name a skill nobody asked for
# or quote a sentence the posting does not contain.


def taxonomy_names() -> list[str]:
    """The canonical skill names (what matching joins postings and profiles on)."""
    return [skill.name for skill in load_taxonomy()]


_QUOTE = re.compile(r'"([^"]+)"')


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def reasoning_quotes_posting(output: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    """Every double-quoted phrase in a skill's reasoning occurs in the posting (title or
    description, case and whitespace aside); the frame around the quotes is free text."""
    source = _normal(f"{data.get('title') or ''}\n{data.get('description') or ''}")
    failures = []
    for i, skill in enumerate(output.get("skills") or []):
        reasoning = skill.get("reasoning") if isinstance(skill, Mapping) else None
        for quote in _QUOTE.findall(reasoning or ""):
            if _normal(quote) not in source:
                short = quote if len(quote) <= 80 else quote[:77] + "..."
                failures.append(f"$.skills[{i}].reasoning: {short!r} is not in the posting")
    return failures


JOB_SKILLS_CHECKS = [
    # re-ask: matching joins on canonical names, so an unknown name never matches and
    # would quietly lower every candidate's score; the re-ask names it, and a model can
    # rename it to the canonical skill or drop it
    one_of("skills[].name", values=taxonomy_names, name="skill_in_taxonomy"),
    # re-ask: a quote the posting does not contain is invented, and so is what it supports
    custom(
        "reasoning_quotes_posting",
        reasoning_quotes_posting,
        description="quoted phrases of skills[].reasoning occur in the posting",
    ),
]

PROFILE_SKILLS_CHECKS = [
    # flag: a candidate's skill outside the taxonomy harms nothing (it just never matches)
    # and is worth keeping; the flag tells the taxonomy's curators what is missing
    one_of("skills[].name", values=taxonomy_names, on_fail="flag", name="skill_in_taxonomy"),
    # re-ask: the evidence must be a line of the CV
    grounded("skills[].evidence", within="cv_text", name="evidence_in_cv"),
]

job_skills = Workflow(
    "job_skills",
    version=2,
    alias=1121,
    description="Extract the skills a job posting asks for, with importance, weight 10-100, "
    "proficiency, years required and the reasoning behind each.",
    tags=("posting", "job", "skills", "extraction"),
    input=c.PostingInput,
    output=c.JobSkills,
    subject_key="posting_id",
    priority=10,
    checks=JOB_SKILLS_CHECKS,
    source=Source(
        sql="SELECT p.posting_id, p.title, p.company, p.description, p.fetched_at "
        "FROM postings p "
        "WHERE NOT EXISTS (SELECT 1 FROM posting_skills s WHERE s.posting_id = p.posting_id) "
        "ORDER BY p.fetched_at DESC, p.posting_id",
        filters=POSTING_FILTERS,
    ),
    sink=Sink.sql(
        "DELETE FROM posting_skills WHERE posting_id = :posting_id",
        "INSERT INTO posting_skills (posting_id, skill, importance, weight, proficiency,"
        " years_required, reasoning) VALUES (:posting_id, :name, :importance, :weight,"
        " :proficiency, :years_required, :reasoning) ON CONFLICT (posting_id, skill) DO NOTHING",
        for_each="skills",
    ),
    steps=[
        LLMStep(
            "extract",
            actor="skills_extractor",
            system=SYSTEM,
            prompt=(
                "Extract every skill this job posting asks for.\n"
                "For each skill give: name (canonical, e.g. PostgreSQL not Postgres), importance "
                "(required if listed under requirements, nice_to_have if under nice to have, "
                "else preferred), weight 10-100, proficiency (beginner, intermediate, advanced, "
                "expert), years_required (null if not stated) and a short reasoning quoting the "
                "posting.\n\n"
                "posting_id: {{ posting_id }}\n"
                "Title: {{ title }}\n"
                "{% if company %}Company: {{ company }}\n{% endif %}"
                "\n{{ description }}"
            ),
        )
    ],
)

profile_skills = Workflow(
    "profile_skills",
    version=2,
    alias=2002,
    description="Extract a candidate profile's skills from the CV text, "
    "with confidence and evidence.",
    tags=("profile", "candidate", "cv", "skills", "extraction"),
    input=c.ProfileInput,
    output=c.ProfileSkills,
    subject_key="profile_id",
    priority=10,
    checks=PROFILE_SKILLS_CHECKS,
    source=Source(
        sql="SELECT p.profile_id, p.cv_text FROM profiles p "
        "WHERE NOT EXISTS (SELECT 1 FROM profile_skills s WHERE s.profile_id = p.profile_id) "
        "ORDER BY p.profile_id"
    ),
    sink=Sink.sql(
        "DELETE FROM profile_skills WHERE profile_id = :profile_id",
        "INSERT INTO profile_skills (profile_id, skill, confidence, evidence)"
        " VALUES (:profile_id, :name, :confidence, :evidence)"
        " ON CONFLICT (profile_id, skill) DO NOTHING",
        for_each="skills",
    ),
    steps=[
        LLMStep(
            "extract",
            actor="skills_extractor",
            system=SYSTEM,
            prompt=(
                "List the skills this candidate has. For each: canonical name, confidence 0-1 "
                "(higher when used in recent experience) and the CV line that shows it.\n\n"
                "profile_id: {{ profile_id }}\n\n{{ cv_text }}"
            ),
        )
    ],
)

profile_skills_legacy = Workflow(
    "profile_skills_legacy",
    version=1,
    alias=1122,
    description="Legacy profile skills: a candidate profile's skill names from the CV text, "
    "no scores.",
    tags=("profile", "candidate", "cv", "skills", "legacy"),
    input=c.ProfileInput,
    output=c.LegacyProfileSkills,
    subject_key="profile_id",
    steps=[
        LLMStep(
            "extract",
            actor="skills_extractor",
            system=SYSTEM,
            prompt="List the canonical skill names in this CV (profile_id {{ profile_id }}):\n\n"
            "{{ cv_text }}",
        )
    ],
)

profile_import = Workflow(
    "profile_import",
    version=1,
    alias=1126,
    description="Import a candidate profile from CV text: parse it into a structured profile, "
    "check it, and store it as a new profile.",
    tags=("profile", "candidate", "cv", "import", "parse"),
    input=c.CVInput,
    output=c.ImportedProfile,
    steps=[
        LLMStep(
            "extract",
            actor="cv_parser",
            system=SYSTEM,
            output=c.ParsedCV,
            prompt=(
                "Parse this CV into a structured profile: full_name, email, location, headline, "
                "years_experience, skills (canonical names), experience (title, company, "
                "start_year, end_year or null if current) and education.\n\n{{ cv_text }}"
            ),
        ),
        ScriptStep("check", run=scripts.check_cv, output=c.CheckedCV),
        ScriptStep("store", run=scripts.import_profile, timeout=30),
    ],
)

match_candidates = Workflow(
    "match_candidates",
    version=1,
    description="Match candidates to a job posting: the top-k profiles by weighted skill overlap.",
    tags=("posting", "job", "candidate", "profile", "match", "rank"),
    input=c.MatchInput,
    output=c.Matches,
    subject_key="posting_id",
    source=Source(sql=MATCH_SOURCE, filters=POSTING_FILTERS),
    sink=Sink.sql(
        "DELETE FROM posting_matches WHERE posting_id = :posting_id",
        "INSERT INTO posting_matches (posting_id, profile_id, rank, score, matched_skills)"
        " VALUES (:posting_id, :profile_id, :index + 1, :score, :matched_skills)",
        for_each="matches",
    ),
    steps=[ScriptStep("rank", run=scripts.match, timeout=60)],
)

WORKFLOWS = [job_skills, profile_skills, profile_skills_legacy, profile_import, match_candidates]
ACTORS = {"talent:offline": OfflineExtractor()}
