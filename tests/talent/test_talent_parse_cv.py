"""parse_cv: exact on every generated CV, sensible on foreign layouts, never raising on junk."""

from __future__ import annotations

import random
import string

import pytest

import talent.contracts as talent_contracts
from talent._text import load_data
from talent.extractor import parse_cv
from talent.generator import Profile, families


def test_every_generated_cv_parses_to_its_ground_truth(profiles: list[Profile]) -> None:
    for profile in profiles:
        assert parse_cv(profile.cv_text) == profile.expected_parse(), profile.profile_id


def test_parsed_cvs_satisfy_the_workflow_contract(profiles: list[Profile]) -> None:
    for profile in profiles[:50]:
        talent_contracts.ParsedCV.model_validate(parse_cv(profile.cv_text))


def test_title_and_company_pools_keep_the_role_word_heuristic_sound() -> None:
    """parse_cv tells "Company | Title" from "Title | Company" by job nouns in the title."""
    from talent._cvparse import is_title

    for family in families():
        for title in family["titles"]:
            assert is_title(title.replace("{skill}", "Python")), title
    for company in load_data()["world"]["companies"]:
        assert not is_title(company["name"]), company


FOREIGN_CV = """JOHN A. SMITH
Senior Data Engineer
john.smith@mail.example.com • (555) 123-4567 • Seattle, WA • linkedin.com/in/jsmith

PROFESSIONAL SUMMARY
Data engineer with 9+ years of experience designing pipelines with Spark and Snowflake.

WORK HISTORY
Acme Corp — Senior Data Engineer
Jan 2020 – Present
• Built streaming pipelines in Kafka; go-to person for k8s.
Data Engineer | Initech | 2015 - 2019
• Migrated ETL jobs to Airflow. R&D support and C-level reporting.

EDUCATION
University of Washington — B.S. Computer Science, 2014

SKILLS
Python, SQL, AWS (S3, Redshift), C/C++
"""


def test_foreign_layout() -> None:
    parsed = parse_cv(FOREIGN_CV)
    assert parsed["full_name"] == "JOHN A. SMITH"
    assert parsed["email"] == "john.smith@mail.example.com"
    assert parsed["location"] == "Seattle, WA"
    assert parsed["headline"] == "Senior Data Engineer"
    assert parsed["years_experience"] == 9
    assert parsed["experience"] == [
        {
            "title": "Senior Data Engineer",
            "company": "Acme Corp",
            "start_year": 2020,
            "end_year": None,
        },
        {"title": "Data Engineer", "company": "Initech", "start_year": 2015, "end_year": 2019},
    ]
    assert parsed["education"] == [
        {"degree": "B.S. Computer Science", "institution": "University of Washington", "year": 2014}
    ]
    assert "Apache Kafka" in parsed["skills"] and "Kubernetes" in parsed["skills"]
    assert "R" not in parsed["skills"] and "Go" not in parsed["skills"]
    assert {"C", "C++", "Amazon Redshift", "Amazon S3"} <= set(parsed["skills"])


def test_years_fall_back_to_the_span_of_roles() -> None:
    text = "Ann Lee\n\nExperience\nNurse, Riverside Health, 2001 - 2011\n"
    assert parse_cv(text)["years_experience"] == 10


EMPTY = {
    "full_name": "",
    "email": None,
    "location": None,
    "headline": None,
    "years_experience": None,
    "skills": [],
    "experience": [],
    "education": [],
}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "hello world",
        "Experience\n2019 - present",
        "Education\n2020",
        "Name:\nHeadline:",
        "a" * 20000,
        "@@@ | +1 555 555 5555 |",
        "Skills:\n",
        "\x00\u2028\ufeff|||—",
    ],
)
def test_unstructured_text_degrades_to_empty_fields(text: str) -> None:
    assert parse_cv(text) == EMPTY


def test_random_junk_never_raises() -> None:
    rng = random.Random(42)
    alphabet = string.printable + "—–•·|@()ÄéΩ中\u2028\x00"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        parsed = parse_cv(text)
        assert set(parsed) == set(EMPTY)
        assert isinstance(parsed["full_name"], str)
        assert parsed["years_experience"] is None or 0 <= parsed["years_experience"] <= 60
