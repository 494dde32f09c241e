"""The talent responder answers the talent workflows like a good model would."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import ollama
import openai

from sim.conftest import MakeSim
from talent import extractor, workflows
from talent.generator import generate_postings, generate_profiles
from talent.responder import TalentResponder, responder
from turing import Workflow


def messages(workflow: Workflow, variables: dict[str, Any]) -> list[dict[str, Any]]:
    step = workflow.steps[0]
    assert step.prompt is not None and step.system is not None
    return [
        {"role": "system", "content": step.system.render(variables)},
        {"role": "user", "content": step.prompt.render(variables)},
    ]


def schema_of(workflow: Workflow) -> dict[str, Any]:
    contract = workflow.steps[0].contract
    assert contract is not None
    return contract.schema


def test_job_skills_through_ollama_for_generated_postings(make_sim: MakeSim) -> None:
    sim = make_sim(responder=responder)
    contract = workflows.job_skills.steps[0].contract
    assert contract is not None

    async def go() -> list[Any]:
        client = ollama.AsyncClient(host=sim.url)
        out = []
        for posting in generate_postings(seed=1, n=5):
            variables = {
                "posting_id": posting.posting_id,
                "title": posting.title,
                "company": posting.company,
                "description": posting.description,
            }
            resp = await client.chat(
                model="qwen2.5:7b",
                messages=messages(workflows.job_skills, variables),
                format=contract.schema,
                options={"temperature": 0},
            )
            out.append((posting, json.loads(resp.message.content)))
        return out

    for posting, answer in asyncio.run(go()):
        assert contract.is_valid(answer)
        assert answer["posting_id"] == posting.posting_id
        assert answer == extractor.extract_posting_skills(
            posting.posting_id, posting.title, posting.description
        )
        names = {s["name"] for s in answer["skills"]}
        truth = {s.name for s in posting.skills}
        assert len(names & truth) >= len(truth) // 2  # plausible: mostly the real skills


def test_profile_workflows_and_cv_parse_through_openai(make_sim: MakeSim) -> None:
    sim = make_sim(responder=responder)
    profile = generate_profiles(seed=1, n=1)[0]
    cases = [
        (workflows.profile_skills, {"profile_id": profile.profile_id, "cv_text": profile.cv_text}),
        (
            workflows.profile_skills_legacy,
            {"profile_id": profile.profile_id, "cv_text": profile.cv_text},
        ),
        (workflows.profile_import, {"cv_text": profile.cv_text, "source": "import"}),
    ]
    expected = [
        extractor.extract_profile_skills(profile.profile_id, profile.cv_text),
        extractor.extract_profile_skills_legacy(profile.profile_id, profile.cv_text),
        extractor.parse_cv(profile.cv_text),
    ]

    async def go() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=sim.openai_url, api_key="x", max_retries=0)
        out = []
        for workflow, variables in cases:
            fmt = {
                "type": "json_schema",
                "json_schema": {"name": workflow.name, "schema": schema_of(workflow)},
            }
            resp = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages(workflow, variables),  # type: ignore[arg-type]
                response_format=fmt,  # type: ignore[arg-type]
            )
            out.append(json.loads(resp.choices[0].message.content or ""))
        return out

    answers = asyncio.run(go())
    assert answers == expected
    assert answers[2]["full_name"] == profile.full_name


def test_reask_messages_still_answer_from_the_original_prompt() -> None:
    posting = generate_postings(seed=1, n=1)[0]
    variables = {
        "posting_id": posting.posting_id,
        "title": posting.title,
        "company": None,
        "description": posting.description,
    }
    first = messages(workflows.job_skills, variables)
    reask = [
        *first,
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": "posting_id: 999\n$.skills: required property missing"},
    ]
    schema = schema_of(workflows.job_skills)
    answer = TalentResponder().respond("m", reask, schema, random.Random(0))
    assert answer["posting_id"] == posting.posting_id and answer["skills"]


def test_other_schemas_fall_back_to_the_schema_responder() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    answer = responder.respond("m", [{"role": "user", "content": "x: 4"}], schema, random.Random(0))
    assert answer == {"x": 4}
    unreadable = [{"role": "user", "content": "no posting here"}]
    schema = schema_of(workflows.job_skills)
    contract = workflows.job_skills.steps[0].contract
    assert contract is not None
    assert contract.is_valid(responder.respond("m", unreadable, schema, random.Random(0)))
