"""Every simulator fault kind through the real Ollama provider, the managed actor and the
executor ends in the right outcome: repaired without a re-ask, retried, re-asked, or failed
with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from talent.generator import generate_postings
from talent.responder import responder
from talent.workflows import job_skills
from turing import Executor, RunResult
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.sim import SimConfig, Simulator

POSTINGS = [
    {
        "posting_id": p.posting_id,
        "title": p.title,
        "company": p.company,
        "description": p.description,
    }
    for p in generate_postings(seed=9, n=6)
]


def run(
    kind: str, rate: float = 1.0, n: int = 3, retries: int = 2, **sim: Any
) -> tuple[list[RunResult], dict[str, Any]]:
    config = SimConfig.profile(
        "fast", seed=2, faults={kind: rate}, retry_after_s=0.05, hang_s=2.0, **sim
    )
    with Simulator(config, responder=responder) as running:
        settings = ActorSettings(
            "ollama", "qwen2.5:7b", base_url=running.url, timeout=0.5, max_retries=retries
        )
        actor = ManagedActor(create(settings), settings, seed=1)

        async def instant(_: float) -> None:
            return None

        actor._sleep = instant  # no waiting between retries in tests
        executor = Executor({"skills_extractor": actor})
        results = [executor.run_sync(job_skills, p) for p in POSTINGS[:n]]
        return results, running.stats()


@pytest.mark.parametrize(
    ("kind", "repair"),
    [
        ("fenced_prose", "strip_fences"),
        ("malformed_json", "json_repair"),
        ("bare_array", "wrap_array"),
        ("one_element_array", "unwrap_singleton"),
        ("json_string", "decode_string"),
        ("extra_fields", "drop_extra"),
    ],
)
def test_shape_faults_are_repaired_without_a_reask(kind: str, repair: str) -> None:
    results, stats = run(kind)
    assert stats["faults"][kind] == 3
    for r in results:
        assert r.ok, r.errors
        assert r.reasks == 0 and len(r.attempts) == 1
        assert repair in {rep.kind for _, rep in r.repairs}


@pytest.mark.parametrize("kind", ["wrong_enum", "missing_field", "empty"])
def test_semantic_faults_are_reasked_then_fail_when_they_persist(kind: str) -> None:
    results, _ = run(kind, n=2)
    for r in results:
        if r.ok:  # a dropped posting_id is filled from the input: repaired, no re-ask needed
            assert kind == "missing_field" and "fill_passthrough" in {x.kind for _, x in r.repairs}
            continue
        assert len(r.attempts) == 3 and r.reasks == 2
        assert r.errors[0].kind == "output_invalid"
        reask = r.attempts[1].messages[-1]
        assert (
            reask["role"] == "user"
            and "did not satisfy the required JSON Schema" in reask["content"]
        )


def test_semantic_faults_that_come_and_go_are_saved_by_a_reask() -> None:
    results, _ = run("wrong_enum", rate=0.25, n=6)
    assert all(r.ok for r in results)
    assert any(r.reasks >= 1 for r in results)


@pytest.mark.parametrize("kind", ["http_500", "http_429", "hang"])
def test_transient_faults_are_retried_then_fail_with_the_reason(kind: str) -> None:
    results, stats = run(kind, n=1)
    [r] = results
    assert not r.ok and r.errors[0].kind == "actor"
    assert "after 2 retries" in r.errors[0].message
    assert stats["faults"][kind] == 3  # the first call and two retries


@pytest.mark.parametrize("kind", ["http_500", "http_429", "hang"])
def test_transient_faults_that_come_and_go_are_retried_to_success(kind: str) -> None:
    results, _ = run(kind, rate=0.3, n=6, retries=5)
    assert all(r.ok for r in results), [e for r in results for e in r.errors]
    assert sum(r.usage.retries for r in results) >= 1
    assert all(r.reasks == 0 for r in results)


def test_unknown_model_fails_at_once_saying_what_to_do() -> None:
    with Simulator(SimConfig.profile("fast"), responder=responder) as running:
        settings = ActorSettings("ollama", "qwen9:70b", base_url=running.url, max_retries=3)
        executor = Executor({"skills_extractor": ManagedActor(create(settings), settings)})
        result = executor.run_sync(job_skills, POSTINGS[0])
        assert running.stats()["calls"] <= 1
    assert not result.ok
    assert "run `ollama pull qwen9:70b`" in result.errors[0].message


def test_a_run_that_gave_up_records_its_retries() -> None:
    [r], _ = run("http_500", n=1, retries=2)
    assert r.usage.retries == 2 and r.attempts[0].usage.calls == 1
