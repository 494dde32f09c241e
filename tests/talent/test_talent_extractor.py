"""The offline extractor against the generator's ground truth, plus output constraints."""

from __future__ import annotations

import re
from typing import Any

import talent.contracts as talent_contracts
from talent.extractor import (
    PROFICIENCIES,
    extract_posting_skills,
    extract_profile_skills,
    extract_profile_skills_legacy,
)
from talent.generator import IMPORTANCES, Posting, Profile

POSTING = """Northwind Labs builds tools for small shops. We run on AWS.

The role
As a Senior Python Engineer you will design our APIs with Django and Postgres.

Requirements:
- 5+ years of experience with Python
- At least 3 years of k8s
- Solid knowledge of PostgreSQL and Redis
- Terraform (2+ years)

Nice to have
- Exposure to GraphQL
- Familiarity with Kafka

What we offer
- 30 days of paid vacation
"""


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {skill["name"]: skill for skill in result["skills"]}


def test_sections_decide_importance_and_years() -> None:
    result = extract_posting_skills(7, "Senior Python Engineer", POSTING)
    assert result["posting_id"] == 7
    skills = _by_name(result)
    assert skills.keys() == {
        "AWS",
        "Python",
        "Django",
        "PostgreSQL",
        "Kubernetes",
        "Redis",
        "Terraform",
        "GraphQL",
        "Apache Kafka",
    }
    importance = {name: s["importance"] for name, s in skills.items()}
    assert importance["Python"] == importance["Kubernetes"] == importance["Redis"] == "required"
    assert importance["GraphQL"] == importance["Apache Kafka"] == "nice_to_have"
    assert importance["Django"] == importance["AWS"] == "preferred"
    years = {name: s["years_required"] for name, s in skills.items()}
    assert (years["Python"], years["Kubernetes"], years["Terraform"], years["Redis"]) == (
        5,
        3,
        2,
        None,
    )
    assert skills["Python"]["proficiency"] == "advanced"
    assert skills["Redis"]["proficiency"] == "advanced"  # senior title, no years
    assert skills["GraphQL"]["proficiency"] == "intermediate"  # nice to have: one level lower
    # the title mention, the extra mention and the years all add weight
    assert skills["Python"]["weight"] > skills["PostgreSQL"]["weight"] > skills["Redis"]["weight"]
    assert skills["Redis"]["weight"] > skills["Django"]["weight"] > skills["GraphQL"]["weight"]
    assert '"5+ years of experience with Python"' in skills["Python"]["reasoning"]
    assert "Requirements" in skills["Python"]["reasoning"]


def test_title_only_skill_is_required() -> None:
    result = extract_posting_skills(1, "Junior Rust Developer", "We build things.\n\nApply now.")
    (skill,) = result["skills"]
    assert skill["name"] == "Rust" and skill["importance"] == "required"
    assert skill["proficiency"] == "beginner" and "title" in skill["reasoning"]


def test_prose_requirements_and_inline_headers() -> None:
    text = (
        "About us\nWe sell shoes.\n\nRequirements: Excel and SQL.\n\n"
        "Bonus points if you have:\nTableau or Looker would be great.\n\n"
        "We value Python. You need 4 years of experience. Nothing else with Go."
    )
    skills = _by_name(extract_posting_skills(1, "Analyst", text))
    assert skills["Excel"]["importance"] == skills["SQL"]["importance"] == "required"
    assert skills["Tableau"]["importance"] == skills["Looker"]["importance"] == "nice_to_have"
    assert skills["Python"]["importance"] == "preferred"  # untitled paragraph ends a section
    assert skills["Python"]["years_required"] is None  # "4 years" is in another sentence
    assert skills["Go"]["years_required"] is None


def _check_posting_output(result: dict[str, Any], description: str, title: str) -> None:
    names = [s["name"] for s in result["skills"]]
    assert len(names) == len(set(names))
    order = [(-s["weight"], s["name"]) for s in result["skills"]]
    assert order == sorted(order)
    for skill in result["skills"]:
        assert set(skill) == {
            "name",
            "importance",
            "weight",
            "proficiency",
            "years_required",
            "reasoning",
        }
        assert skill["importance"] in IMPORTANCES
        assert skill["proficiency"] in PROFICIENCIES
        assert isinstance(skill["weight"], int) and 10 <= skill["weight"] <= 100
        assert skill["years_required"] is None or 0 <= skill["years_required"] <= 30
        assert 0 < len(skill["reasoning"]) <= 500
        for quote in re.findall(r'"([^"]+)"', skill["reasoning"]):
            assert quote in description or quote in title, (quote, skill)


def test_recall_and_precision_on_generated_postings(postings: list[Posting]) -> None:
    tp = fp = fn = same_importance = same_years = 0
    for posting in postings:
        result = extract_posting_skills(posting.posting_id, posting.title, posting.description)
        _check_posting_output(result, posting.description, posting.title)
        got = _by_name(result)
        truth = {s.name: s for s in posting.skills}
        tp += len(got.keys() & truth.keys())
        fp += len(got.keys() - truth.keys())
        fn += len(truth.keys() - got.keys())
        for name in got.keys() & truth.keys():
            same_importance += got[name]["importance"] == truth[name].importance
            same_years += got[name]["years_required"] == truth[name].years
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    assert same_importance / tp >= 0.95 and same_years / tp >= 0.95


def test_posting_output_satisfies_the_workflow_contract(postings: list[Posting]) -> None:
    for posting in postings[:50]:
        result = extract_posting_skills(posting.posting_id, posting.title, posting.description)
        talent_contracts.JobSkills.model_validate(result)


CV = """Jane Roe
Backend Engineer
jane@example.com | Berlin, Germany

Summary
Engineer who loves Python.

Experience
Backend Engineer at Northwind Labs | 2020 - present
- Built services in Python and Go on k8s.

Skills
Python, Docker, Communication

Education
B.Sc. in Computer Science, University of Vienna, 2019
"""


def test_profile_confidence_follows_where_skills_appear() -> None:
    result = extract_profile_skills(3, CV)
    assert result["profile_id"] == 3
    skills = _by_name(result)
    assert skills["Python"]["confidence"] == 0.95  # listed and used
    assert skills["Docker"]["confidence"] == 0.8  # listed only
    assert skills["Go"]["confidence"] == skills["Kubernetes"]["confidence"] == 0.75  # used only
    assert skills["Python"]["evidence"] == "Built services in Python and Go on k8s."
    for skill in result["skills"]:
        assert 0 <= skill["confidence"] <= 1
        assert 0 < len(skill["evidence"]) <= 200 and skill["evidence"] in CV
    assert extract_profile_skills_legacy(3, CV) == {
        "profile_id": 3,
        "skills": ["Communication", "Docker", "Go", "Kubernetes", "Python"],
    }


def test_profile_extraction_finds_exactly_the_generated_skills(profiles: list[Profile]) -> None:
    for profile in profiles:
        result = extract_profile_skills(profile.profile_id, profile.cv_text)
        assert {s["name"] for s in result["skills"]} == set(profile.skills)
        legacy = extract_profile_skills_legacy(profile.profile_id, profile.cv_text)
        assert legacy["skills"] == sorted(profile.skills)


def test_profile_output_satisfies_the_workflow_contracts(profiles: list[Profile]) -> None:
    for profile in profiles[:50]:
        result = extract_profile_skills(profile.profile_id, profile.cv_text)
        talent_contracts.ProfileSkills.model_validate(result)
        legacy = extract_profile_skills_legacy(profile.profile_id, profile.cv_text)
        talent_contracts.LegacyProfileSkills.model_validate(legacy)


def test_long_lines_give_clipped_evidence() -> None:
    text = "Skills\n" + ", ".join(["Teamwork"] * 60 + ["Kotlin"]) + "\n"
    (kotlin,) = [s for s in extract_profile_skills(1, text)["skills"] if s["name"] == "Kotlin"]
    assert "Kotlin" in kotlin["evidence"] and len(kotlin["evidence"]) <= 200
