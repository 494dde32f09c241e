"""The talent workflows' checks: silent on good answers, and what catches the simulator's
ungrounded answers (a skill outside the taxonomy, a reasoning quoting what the posting
does not say) before they reach the sink."""

from __future__ import annotations

from typing import Any

from talent import extractor, workflows
from talent.generator import Posting, Profile, generate_postings
from talent.responder import responder
from talent.taxonomy import load_taxonomy
from turing import Executor
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.sim import SimConfig, Simulator
from turing.sim.faults import _INVENTED_NAMES


def _posting(p: Posting) -> dict[str, Any]:
    return {
        "posting_id": p.posting_id,
        "title": p.title,
        "company": p.company,
        "description": p.description,
    }


def _failures(checks: list[Any], output: Any, data: dict[str, Any]) -> list[str]:
    return [v.rule for check in checks for v in check.violations(output, data)]


def test_checks_hold_for_good_answers(postings: list[Posting], profiles: list[Profile]) -> None:
    for p in postings:
        out = extractor.extract_posting_skills(p.posting_id, p.title, p.description)
        assert not _failures(workflows.JOB_SKILLS_CHECKS, out, _posting(p)), p.posting_id
    for prof in profiles:
        out = extractor.extract_profile_skills(prof.profile_id, prof.cv_text)
        data = {"profile_id": prof.profile_id, "cv_text": prof.cv_text}
        assert not _failures(workflows.PROFILE_SKILLS_CHECKS, out, data), prof.profile_id


def test_checks_catch_an_unknown_skill_and_an_invented_quote(postings: list[Posting]) -> None:
    p = next(p for p in postings if p.description.count("\n") > 3)
    data = _posting(p)
    good = extractor.extract_posting_skills(p.posting_id, p.title, p.description)
    assert good["skills"]
    renamed = {**good, "skills": [{**good["skills"][0], "name": "Quantaflow"}]}
    assert _failures(workflows.JOB_SKILLS_CHECKS, renamed, data) == ["check:skill_in_taxonomy"]
    skill = good["skills"][0]
    frame = skill["reasoning"].split('"')
    frame[-2] = "Ten years of HyperMesh leadership"  # the last quoted phrase
    invented = {**good, "skills": [{**skill, "reasoning": '"'.join(frame)}]}
    assert _failures(workflows.JOB_SKILLS_CHECKS, invented, data) == [
        "check:reasoning_quotes_posting"
    ]
    assert workflows.job_skills.checks and workflows.profile_skills.checks
    flag = {c.name: c.on_fail for c in workflows.profile_skills.checks}
    assert flag == {"skill_in_taxonomy": "flag", "evidence_in_cv": "reask"}


def test_invented_names_are_not_in_the_taxonomy() -> None:
    taxonomy = load_taxonomy()
    assert not [name for name in _INVENTED_NAMES if name in taxonomy]


def test_ungrounded_answers_are_reasked_until_they_are_grounded() -> None:
    config = SimConfig.profile("fast", seed=4, faults={"ungrounded": 0.5})
    postings = [_posting(p) for p in generate_postings(seed=15, n=8)]
    with Simulator(config, responder=responder) as sim:
        settings = ActorSettings("ollama", "qwen2.5:7b", base_url=sim.url, timeout=5)
        executor = Executor({"skills_extractor": ManagedActor(create(settings), settings)})
        results = [executor.run_sync(workflows.job_skills, p) for p in postings]
        stats = sim.stats()
    assert stats["faults"]["ungrounded"] >= 2
    failed = [
        v.rule for r in results for a in r.attempts for v in a.violations if v.rule
    ]  # every injected fault was seen by a check
    assert len(failed) >= stats["faults"]["ungrounded"]
    assert set(failed) <= {"check:skill_in_taxonomy", "check:reasoning_quotes_posting"}
    for r, p in zip(results, postings, strict=True):
        if r.ok:  # what would reach the sink: exactly what the posting says
            truth = extractor.extract_posting_skills(p["posting_id"], p["title"], p["description"])
            assert r.output == truth
