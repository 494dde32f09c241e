"""The talent workflows: skills from postings and profiles, profile import, matching.

Aliases keep the numbers of the system Turing replaces (1121, 2002, 1122, 1126). The LLM
steps name logical actors (`skills_extractor`, `cv_parser`) that turing.toml maps to the
offline extractor or to a real model.
"""

from __future__ import annotations

from turing import LLMStep, ScriptStep, Workflow

from talent import contracts as c
from talent import scripts
from talent.actors import OfflineExtractor

SYSTEM = (
    "You are a precise information extraction engine for a recruiting platform. "
    "Answer with one JSON object that satisfies the given JSON Schema and nothing else."
)

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
    description="Extract a candidate profile's skills from the CV text, with confidence and evidence.",
    tags=("profile", "candidate", "cv", "skills", "extraction"),
    input=c.ProfileInput,
    output=c.ProfileSkills,
    subject_key="profile_id",
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
    description="Legacy profile skills: a candidate profile's skill names from the CV text, no scores.",
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
    steps=[ScriptStep("rank", run=scripts.match, timeout=60)],
)

WORKFLOWS = [job_skills, profile_skills, profile_skills_legacy, profile_import, match_candidates]
ACTORS = {"talent:offline": OfflineExtractor()}
