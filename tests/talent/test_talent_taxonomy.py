"""Taxonomy invariants and the free-text matcher's rules (tricky names, false positives)."""

from __future__ import annotations

import pytest

from talent.taxonomy import Skill, Taxonomy, load_taxonomy, normalize

TX = load_taxonomy()


def test_size_and_categories() -> None:
    assert len(TX) >= 400
    categories = {skill.category for skill in TX}
    assert len(categories) >= 20
    for expected in ("Programming Languages", "Databases", "Security", "Healthcare", "Legal"):
        assert expected in categories


def test_names_unique_and_parents_exist_without_cycles() -> None:
    names = [skill.name for skill in TX]
    assert len(names) == len(set(names))
    for skill in TX:
        assert skill.parent is None or TX.get(skill.parent) is not None, skill
        chain = TX.ancestors(skill.name)
        assert skill.name not in chain and len(chain) == len(set(chain))


def test_aliases_are_unique_and_resolve_to_their_skill() -> None:
    seen: dict[str, str] = {}
    for skill in TX:
        for term in (skill.name, *skill.aliases):
            key = normalize(term)
            assert seen.setdefault(key, skill.name) == skill.name, term
            assert TX.get(term) == skill


def test_every_name_and_alias_is_found_in_plain_text() -> None:
    for skill in TX:
        for term in (skill.name, *skill.aliases):
            assert TX.skills_in(f"We use {term} daily.") == [skill.name], term


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("postgres", "PostgreSQL"),
        ("  PSQL ", "PostgreSQL"),
        ("js", "JavaScript"),
        ("ECMAScript", "JavaScript"),
        ("K8S", "Kubernetes"),
        ("golang", "Go"),
        ("machine   learning", "Machine Learning"),
    ],
)
def test_get_is_case_and_space_insensitive(query: str, expected: str) -> None:
    skill = TX.get(query)
    assert skill is not None and skill.name == expected


def test_get_unknown_and_ancestors() -> None:
    assert TX.get("underwater basket weaving") is None
    assert TX.ancestors("Django") == ["Python"]
    assert TX.ancestors("Keras") == ["TensorFlow", "Deep Learning", "Machine Learning"]
    assert TX.ancestors("PostgreSQL") == ["SQL"]
    assert TX.ancestors("nope") == []
    assert "Django" in TX.children("Python")
    assert "k8s" in TX and "nope" not in TX


def test_invalid_taxonomies_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown parent"):
        Taxonomy([Skill("A", "x", (), "B")])
    with pytest.raises(ValueError, match="cycle"):
        Taxonomy([Skill("A", "x", (), "B"), Skill("B", "x", (), "A")])
    with pytest.raises(ValueError, match="names both"):
        Taxonomy([Skill("A", "x", ("same",), None), Skill("B", "x", ("Same",), None)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We write C++ and C# every day.", ["C++", "C#"]),
        ("Services on .NET and ASP.NET Core.", [".NET", "ASP.NET"]),
        ("Frontend in Vue.js, backend in Node.js.", ["Vue.js", "Node.js"]),
        ("You own our CI/CD pipelines on k8s.", ["CI/CD", "Kubernetes"]),
        ("Reports in T-SQL and PL/SQL, data in Postgres.", ["T-SQL", "PL/SQL", "PostgreSQL"]),
        ("Drivers written in C/C++.", ["C", "C++"]),
        ("Modern JS and TypeScript.", ["JavaScript", "TypeScript"]),
        ("Python 3.11 and python3 scripts.", ["Python"]),
        ("Mobile apps in React Native, web apps in React.", ["React Native", "React"]),
        ("Experience with Go and Rust.", ["Go", "Rust"]),
        ("Backend services in Golang.", ["Go"]),
        ("Statistics in R and Python.", ["Statistics", "R", "Python"]),
        ("A/B testing, GD&T and FP&A.", ["A/B Testing", "GD&T", "FP&A"]),
        ("REST APIs, not the rest of it.", ["REST APIs"]),
        ("Skills: Go, SQL", ["Go", "SQL"]),
        ("- Go\n- Rust", ["Go", "Rust"]),
    ],
)
def test_tricky_names_are_found(text: str, expected: list[str]) -> None:
    assert TX.skills_in(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Go beyond what customers expect.",
        "Let's go to the office and go live.",
        "She is our Go-to person; a good place to go.",
        "Our R&D team reports to C-level executives.",
        "We closed our Series C round; grade C is not enough; Vitamin C helps.",
        "You will excel at this and react quickly.",
        "The rest of the team is a lean, swift group that can spark joy.",
        "Give 5 ml twice a day; the rust on the pipes is old.",
        "Contact python@example.com or jane.python@example.com or see notes.js.",
        "We sketch ideas, bootstrap teams and keep an epic slack channel.",
        "She said: C'est la vie. R-squared was high.",
    ],
)
def test_false_positives_are_avoided(text: str) -> None:
    assert TX.find(text) == []


def test_mentions_point_at_their_surface_text() -> None:
    text = "We need Postgres, k8s and JS; also Golang.\nPython-based tools."
    mentions = TX.find(text)
    assert [m.skill for m in mentions] == ["PostgreSQL", "Kubernetes", "JavaScript", "Go", "Python"]
    for mention in mentions:
        assert text[mention.start : mention.end] == mention.surface
