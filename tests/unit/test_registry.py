"""Registry lookups (name, alias, suggestions), BM25 find, capabilities, and the public API."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import turing
from turing import LLMStep, Registry, ScriptStep, Workflow
from turing.errors import TuringError, UnknownWorkflowError
from turing.search import terms


class Posting(BaseModel):
    posting_id: int
    title: str
    description: str


class Profile(BaseModel):
    profile_id: int
    cv_text: str


class Skills(BaseModel):
    skills: list[str]


def wf(name: str, inp: type[BaseModel], description: str, alias: int | None = None) -> Workflow:
    return Workflow(
        name,
        input=inp,
        output=Skills,
        alias=alias,
        description=description,
        steps=[LLMStep("extract", actor="m", prompt="x")],
    )


@pytest.fixture
def registry() -> Registry:
    return Registry(
        [
            wf("job_skills", Posting, "Extract the skills a job posting asks for.", 1121),
            wf(
                "profile_skills", Profile, "Extract a candidate profile's skills from the CV.", 2002
            ),
            wf("summarize_cv", Profile, "Summarise a candidate CV in three lines."),
        ]
    )


def test_lookup_by_name_and_alias(registry: Registry) -> None:
    assert registry.get("job_skills").name == "job_skills"
    assert registry.get(1121).name == "job_skills"
    assert registry.get("2002").name == "profile_skills"
    assert "1121" in registry and "nope" not in registry


def test_unknown_name_suggests_close_ones(registry: Registry) -> None:
    with pytest.raises(UnknownWorkflowError, match="job_skills"):
        registry.get("job_skill")


def test_duplicate_names_and_aliases_are_rejected(registry: Registry) -> None:
    with pytest.raises(TuringError, match="two workflows are named"):
        registry.add(wf("job_skills", Posting, "again"))
    with pytest.raises(TuringError, match="share alias 1121"):
        registry.add(wf("other", Posting, "x", 1121))


def test_find_ranks_by_relevance(registry: Registry) -> None:
    ranked = registry.find("extract skills from job")
    assert ranked[0].workflow.name == "job_skills"
    assert ranked[0].score > 1.5 * ranked[1].score
    assert registry.find("summarise a CV")[0].workflow.name == "summarize_cv"
    assert registry.find("2002")[0].workflow.name == "profile_skills"
    assert registry.find("quantum entanglement") == []


def test_terms_normalise() -> None:
    assert terms("Extract the Skills from job_postings") == ["extract", "skill", "job", "posting"]
    assert terms("companies") == ["company"]


def test_capabilities(registry: Registry) -> None:
    tools = registry.capabilities("openai-tools")
    first = tools[0]["function"]
    assert first["name"] == "job_skills" and first["parameters"]["required"] == [
        "posting_id",
        "title",
        "description",
    ]
    plain = registry.capabilities()
    assert plain[0]["alias"] == 1121 and "output" in plain[0]


def test_public_api_is_curated() -> None:
    assert sorted(turing.__all__) == turing.__all__
    for name in turing.__all__:
        assert hasattr(turing, name), name
    assert {"Workflow", "LLMStep", "ScriptStep", "Executor", "Orchestrator", "Contract"} <= set(
        turing.__all__
    )
    assert not any(name.startswith("_") and name != "__version__" for name in turing.__all__)


def test_script_steps_are_found_too() -> None:
    reg = Registry(
        [Workflow("tally", input=Posting, output=Skills, steps=[ScriptStep("count", run=len)])]
    )
    assert reg.find("tally count")[0].workflow.name == "tally"
