"""The executor with FakeModel: validation boundaries, repair, re-asks, failures, concurrency."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from pydantic import BaseModel, Field

from turing.actors.base import ModelRequest, ModelResponse, Usage
from turing.actors.fake import FakeModel
from turing.errors import ActorError
from turing.executor import REASK, Executor, actors_from
from turing.result import ERROR_KINDS, RunResult
from turing.scripts import ScriptContext
from turing.steps import LLMStep, ScriptStep
from turing.workflow import Workflow


class PostingIn(BaseModel):
    posting_id: int
    text: str = Field(min_length=1)
    city: str | None = None


class Skill(BaseModel):
    name: str
    weight: float = Field(ge=0, le=1)


class Extracted(BaseModel):
    posting_id: int
    skills: list[Skill]


class Summary(BaseModel):
    posting_id: int
    summary: str


INPUT = {"posting_id": 7, "text": "We need Python and SQL."}
GOOD = {"posting_id": 7, "skills": [{"name": "python", "weight": 0.9}]}
BAD_WEIGHT = {
    "posting_id": 7,
    "skills": [{"name": "python", "weight": 0.9}, {"name": "sql", "weight": 5}],
}


def extract_only(**step: Any) -> Workflow:
    return Workflow(
        "talent",
        input=PostingIn,
        output=Extracted,
        steps=[LLMStep("extract", "Extract skills from: {{ text }}", **step)],
        subject_key="posting_id",
    )


def two_steps(**summary: Any) -> Workflow:
    return Workflow(
        "talent",
        input=PostingIn,
        output=Summary,
        steps=[
            LLMStep("extract", "Extract skills from: {{ text }}", output=Extracted),
            LLMStep(
                "summarize",
                "Posting {{ posting_id }} needs {{ extract.skills }}",
                **summary,
            ),
        ],
    )


def answer(value: Any, inp: int, out: int) -> ModelResponse:
    text = value if isinstance(value, str) else json.dumps(value)
    return ModelResponse(text, Usage(inp, out, 1), model="fake")


def run(workflow: Workflow, fake: Any, inputs: dict[str, Any] = INPUT, **kw: Any) -> RunResult:
    return Executor({"default": fake}, **kw).run_sync(workflow, inputs)


def assert_json_roundtrip(result: RunResult) -> dict[str, Any]:
    data = result.as_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    return data


# ------------------------------------------------------------------ happy path


def test_happy_path_two_steps_sums_usage() -> None:
    fake = FakeModel(
        [answer(GOOD, 100, 20), answer({"posting_id": 7, "summary": "Python role"}, 50, 10)]
    )
    result = run(two_steps(), fake)

    assert result.ok, result.errors
    assert result.status == "succeeded"
    assert result.output == {"posting_id": 7, "summary": "Python role"}
    assert result.errors == []
    assert result.usage == Usage(150, 30, 2)
    assert [(s.name, s.kind, s.status, s.attempts) for s in result.steps] == [
        ("extract", "llm", "succeeded", 1),
        ("summarize", "llm", "succeeded", 1),
    ]
    assert [s.usage for s in result.steps] == [Usage(100, 20, 1), Usage(50, 10, 1)]
    assert result.steps[0].output == GOOD
    assert [(a.step, a.number, a.actor, a.ok) for a in result.attempts] == [
        ("extract", 1, "fake:fake", True),
        ("summarize", 1, "fake:fake", True),
    ]
    assert result.reasks == 0
    assert result.repairs == []
    assert result.workflow == "talent"
    assert result.version == 1
    assert result.duration_s > 0

    first = fake.requests[0]
    assert [m.as_dict() for m in first.messages] == [
        {"role": "user", "content": "Extract skills from: We need Python and SQL."}
    ]
    assert first.schema == two_steps().steps[0].contract.schema  # type: ignore[union-attr]
    assert first.schema_name == "talent_extract"
    assert fake.requests[1].schema_name == "talent_output"


def test_later_steps_see_earlier_outputs_by_name() -> None:
    fake = FakeModel([GOOD, {"posting_id": 7, "summary": "ok"}])
    result = run(two_steps(), fake)
    assert result.ok
    second = fake.requests[1]
    assert second.messages[-1].content == 'Posting 7 needs [{"name": "python", "weight": 0.9}]'
    assert second.variables["extract"] == GOOD
    assert second.variables["text"] == INPUT["text"]


def test_step_settings_reach_the_request() -> None:
    fake = FakeModel([GOOD])
    workflow = extract_only(
        system="You extract skills for posting {{ posting_id }}.",
        temperature=0.3,
        max_tokens=256,
        seed=11,
        timeout=9.0,
    )
    assert run(workflow, fake).ok
    [request] = fake.requests
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == "You extract skills for posting 7."
    assert (request.temperature, request.max_tokens, request.seed, request.timeout) == (
        0.3,
        256,
        11,
        9.0,
    )


def test_repairs_are_recorded_on_step_attempt_and_result() -> None:
    fake = FakeModel(['Sure!\n```json\n[{"name": "python", "weight": "0.5"}]\n```'])
    result = run(extract_only(), fake)
    assert result.ok, result.errors
    # bare array wrapped under the one array field, subject key copied from the input
    assert result.output == {"posting_id": 7, "skills": [{"name": "python", "weight": 0.5}]}
    kinds = ["strip_fences", "wrap_array", "coerce_scalar"]
    assert [r.kind for _, r in result.repairs] == kinds
    assert {s for s, _ in result.repairs} == {"extract"}
    assert [r.kind for r in result.attempts[0].repairs] == kinds
    assert [r["kind"] for r in assert_json_roundtrip(result)["repairs"]] == kinds
    assert len(fake.requests) == 1  # repaired, not re-asked


# ------------------------------------------------------------------ input validation


@pytest.mark.parametrize(
    ("inputs", "paths"),
    [
        pytest.param({"posting_id": "7", "text": "x"}, ["$.posting_id"], id="wrong-type"),
        pytest.param({"posting_id": True, "text": "x"}, ["$.posting_id"], id="bool-for-int"),
        pytest.param({"posting_id": 7, "text": ""}, ["$.text"], id="too-short"),
        pytest.param({"text": "x"}, ["$"], id="missing"),
        pytest.param({"posting_id": 7, "text": "x", "city": 3}, ["$.city"], id="optional-bad"),
    ],
)
def test_invalid_input_fails_before_any_model_call(
    inputs: dict[str, Any], paths: list[str]
) -> None:
    fake = FakeModel([GOOD])
    result = run(extract_only(), fake, inputs)
    assert result.status == "failed"
    assert not result.ok
    assert fake.requests == []
    assert result.steps == []
    assert result.attempts == []
    assert result.output is None
    [error] = result.errors
    assert error.kind == "input_invalid"
    assert error.step is None
    assert [v.path for v in error.violations] == paths
    assert "input breaks contract 'talent.input' of workflow 'talent' v1" in error.message
    assert assert_json_roundtrip(result)["errors"][0]["kind"] == "input_invalid"


# ------------------------------------------------------------------ re-asks


def test_reask_after_unrepairable_output() -> None:
    bad_text = json.dumps(BAD_WEIGHT)
    fake = FakeModel([answer(bad_text, 100, 40), answer(GOOD, 160, 30)])
    result = run(extract_only(), fake)

    assert result.ok, result.errors
    assert result.output == GOOD
    assert len(fake.requests) == 2
    first, second = fake.requests
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert second.messages[0] == first.messages[0]
    assert second.messages[1].content == bad_text
    reask = second.messages[2].content
    assert reask.startswith(REASK.split("{problems}")[0])
    assert "- $.skills[1].weight: " in reask
    assert "[rule: maximum]" in reask

    assert result.usage == Usage(260, 70, 2)
    assert result.steps[0].usage == Usage(260, 70, 2)
    assert result.steps[0].attempts == 2
    assert result.reasks == 1
    assert [(a.number, a.ok) for a in result.attempts] == [(1, False), (2, True)]
    assert [v.path for v in result.attempts[0].violations] == ["$.skills[1].weight"]
    assert result.attempts[0].raw == bad_text
    assert [m["role"] for m in result.attempts[1].messages] == ["user", "assistant", "user"]


def test_reask_after_text_without_json() -> None:
    fake = FakeModel(["Sorry, I can't find any skills.", GOOD])
    result = run(extract_only(), fake)
    assert result.ok
    reask = fake.requests[1].messages[-1].content
    assert "- $: no JSON object or array found in the response [rule: json]" in reask


@pytest.mark.parametrize("max_reasks", [0, 1, 2, 4])
def test_reasks_exhausted(max_reasks: int) -> None:
    fake = FakeModel(lambda request: BAD_WEIGHT)
    result = run(extract_only(max_reasks=max_reasks), fake)

    assert result.status == "failed"
    assert len(fake.requests) == max_reasks + 1
    assert len(result.attempts) == max_reasks + 1
    assert result.reasks == max_reasks
    assert result.usage.calls == max_reasks + 1
    assert result.steps[0].status == "failed"
    assert result.steps[0].attempts == max_reasks + 1
    [error] = result.errors
    assert error.kind == "output_invalid"
    assert error.step == "extract"
    assert f"after {max_reasks} re-ask(s)" in error.message
    assert [(v.path, v.rule) for v in error.violations] == [("$.skills[1].weight", "maximum")]
    # each re-ask carries the whole conversation so far
    assert [len(r.messages) for r in fake.requests] == [1 + 2 * i for i in range(max_reasks + 1)]
    assert_json_roundtrip(result)


def test_max_reasks_zero_succeeds_on_first_good_answer() -> None:
    fake = FakeModel([GOOD])
    result = run(extract_only(max_reasks=0), fake)
    assert result.ok
    assert len(fake.requests) == 1


# ------------------------------------------------------------------ actor failures


def test_actor_error_fails_the_run() -> None:
    fake = FakeModel([ActorError("HTTP 503 from provider", transient=True)])
    result = run(extract_only(), fake)
    assert result.status == "failed"
    [error] = result.errors
    assert (error.kind, error.step) == ("actor", "extract")
    assert error.message == "fake:fake: HTTP 503 from provider"
    assert len(fake.requests) == 1  # not re-asked: re-asks are for bad output only
    [attempt] = result.attempts
    assert attempt.error == "HTTP 503 from provider"
    assert attempt.raw == ""
    assert not attempt.ok
    assert result.steps[0].status == "failed"
    assert_json_roundtrip(result)


def test_actor_error_on_reask_keeps_first_attempt() -> None:
    fake = FakeModel([BAD_WEIGHT, ActorError("connection reset")])
    result = run(extract_only(), fake)
    assert [e.kind for e in result.errors] == ["actor"]
    assert [(a.number, a.error) for a in result.attempts] == [(1, None), (2, "connection reset")]
    assert result.steps[0].attempts == 2


def test_actor_timeout_fails_the_run() -> None:
    fake = FakeModel([GOOD], delay=5.0)
    result = run(extract_only(timeout=0.05), fake)  # the timeout ends the call, not the delay
    assert result.status == "failed"
    [error] = result.errors
    assert (error.kind, error.step) == ("actor", "extract")
    assert "no answer after 0.05s" in error.message
    assert result.attempts[0].error == "no answer after 0.05s"


def test_unknown_actor_fails_without_calling_anyone() -> None:
    fake = FakeModel([GOOD])
    executor = Executor({"default": fake})
    result = executor.run_sync(extract_only(actor="gpt_big"), INPUT)
    assert result.status == "failed"
    [error] = result.errors
    assert (error.kind, error.step) == ("actor", "extract")
    assert error.message == "no actor 'gpt_big' is configured (known: default)"
    assert fake.requests == []
    assert result.attempts == []


def test_actors_from_resolver() -> None:
    fake = FakeModel()
    resolve = actors_from({"default": fake})
    assert resolve("default") is fake
    with pytest.raises(ActorError, match=r"no actor 'x' is configured \(known: default\)"):
        resolve("x")
    with pytest.raises(ActorError, match=r"\(known: none\)"):
        actors_from({})("x")


def test_executor_fingerprint_includes_actor_identity() -> None:
    workflow = extract_only()
    small = Executor({"default": FakeModel(name="small")}).fingerprint(workflow)
    large = Executor({"default": FakeModel(name="large")}).fingerprint(workflow)
    missing = Executor({}).fingerprint(workflow)
    assert len({small, large, missing}) == 3
    assert small == workflow.fingerprint({"default": "fake:small"})
    assert missing == workflow.fingerprint({"default": "unresolved"})
    assert run(workflow, FakeModel([GOOD], name="small")).fingerprint == small


# ------------------------------------------------------------------ templates at run time


def test_null_placeholder_fails_the_step_without_a_model_call() -> None:
    workflow = Workflow(
        "talent",
        input=PostingIn,
        output=Extracted,
        steps=[LLMStep("extract", "{{ text }} in {{ city }}")],
    )
    fake = FakeModel([GOOD])
    result = run(workflow, fake, {**INPUT, "city": None})
    assert [(e.kind, e.step) for e in result.errors] == [("template", "extract")]
    assert "prompt not rendered" in result.errors[0].message
    assert fake.requests == []


# ------------------------------------------------------------------ concurrency


class OrderedFake(FakeModel):
    """FakeModel that logs each call's start (`left+`) and end (`left-`) by step name, in
    order. The calls of the steps in `together` wait for each other to have started (at most
    10 s), so calls that can run concurrently always overlap, however slow the machine."""

    def __init__(self, *args: Any, together: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[str] = []
        self.together = together
        self._started: set[str] = set()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        step = request.schema_name.split("_", 1)[1]
        self.events.append(f"{step}+")
        self._started.add(step)
        try:
            for _ in range(1000 if step in self.together else 0):
                if self.together <= self._started:
                    break
                await asyncio.sleep(0.01)
            return await super().complete(request)
        finally:
            self.events.append(f"{step}-")


def by_step(request: ModelRequest) -> Any:
    step = request.schema_name.split("_", 1)[1]
    if step == "output":
        return {"posting_id": 7, "summary": "done"}
    return {"posting_id": 7, "skills": []}


def fan_in(after: tuple[str, ...] | None) -> Workflow:
    return Workflow(
        "talent",
        input=PostingIn,
        output=Summary,
        steps=[
            LLMStep("left", "A {{ text }}", output=Extracted, after=after),
            LLMStep("right", "B {{ text }}", output=Extracted, after=after),
            LLMStep("join", "{{ left.skills }} {{ right.skills }}", after=("left", "right")),
        ],
    )


def test_independent_steps_run_concurrently() -> None:
    fake = OrderedFake(by_step, together=frozenset({"left", "right"}))
    result = run(fan_in(after=()), fake)
    assert result.ok, result.errors
    assert sorted(fake.events[:2]) == ["left+", "right+"]  # the two calls overlap
    assert fake.events[-2:] == ["output+", "output-"]  # the dependent step waits for both
    assert [s.name for s in result.steps] == ["left", "right", "join"]


def test_dependent_steps_run_in_order() -> None:
    fake = OrderedFake(by_step)
    workflow = Workflow(
        "talent",
        input=PostingIn,
        output=Summary,
        steps=[
            LLMStep("left", "A {{ text }}", output=Extracted),
            LLMStep("right", "B {{ text }}", output=Extracted),  # after=None: after "left"
            LLMStep("join", "{{ left.skills }} {{ right.skills }}"),
        ],
    )
    assert run(workflow, fake).ok
    assert fake.events == ["left+", "left-", "right+", "right-", "output+", "output-"]


def test_one_failing_branch_fails_the_run() -> None:
    def flaky(request: ModelRequest) -> Any:
        if request.schema_name == "talent_right":
            return ActorError("right is down")
        return by_step(request)

    fake = FakeModel(flaky)
    result = run(fan_in(after=()), fake)
    assert result.status == "failed"
    assert [(e.kind, e.step) for e in result.errors] == [("actor", "right")]
    assert {s.name: s.status for s in result.steps} == {"left": "succeeded", "right": "failed"}
    assert len(fake.requests) == 2  # "join" never ran


# ------------------------------------------------------------------ script steps


def clean(data: dict[str, Any]) -> dict[str, Any]:
    return {"text": data["text"].upper()}


def scripted(final: Any, **kw: Any) -> Workflow:
    return Workflow(
        "talent",
        input=PostingIn,
        output=Summary,
        steps=[ScriptStep("prep", run=clean), ScriptStep("finish", run=final, **kw)],
    )


def test_script_output_is_validated_at_the_end() -> None:
    result = run(scripted(lambda data: {"posting_id": data["posting_id"], "summary": 3}), None)
    assert result.status == "failed"
    [error] = result.errors
    assert (error.kind, error.step) == ("output_invalid", "finish")
    assert "output breaks contract 'talent.output' of workflow 'talent' v1" in error.message
    assert [(v.path, v.rule) for v in error.violations] == [("$.summary", "type")]
    assert result.output is None


def test_script_pipeline_succeeds_and_sees_earlier_outputs() -> None:
    def finish(data: dict[str, Any]) -> dict[str, Any]:
        return {"posting_id": data["posting_id"], "summary": data["prep"]["text"]}

    result = run(scripted(finish), None)
    assert result.ok, result.errors
    assert result.output == {"posting_id": 7, "summary": "WE NEED PYTHON AND SQL."}
    assert [(s.name, s.kind, s.attempts) for s in result.steps] == [
        ("prep", "script", 1),
        ("finish", "script", 1),
    ]
    assert result.usage == Usage()
    assert_json_roundtrip(result)


def test_intermediate_script_output_checked_against_its_own_contract() -> None:
    workflow = Workflow(
        "talent",
        input=PostingIn,
        output=Summary,
        steps=[
            ScriptStep("prep", run=lambda d: {"skills": "python"}, output=Extracted),
            LLMStep("summarize", "{{ prep.skills }}"),
        ],
    )
    fake = FakeModel([{"posting_id": 7, "summary": "x"}])
    result = run(workflow, fake)
    [error] = result.errors
    assert (error.kind, error.step) == ("script_bad_output", "prep")
    assert sorted((v.path, v.rule) for v in error.violations) == [
        ("$", "required"),
        ("$.skills", "type"),
    ]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        pytest.param(ScriptStep("finish", run=lambda d: 1 / 0), "script_crash", id="crash"),
        pytest.param(
            ScriptStep("finish", command=[sys.executable, "-c", "print('nope')"]),
            "script_bad_output",
            id="bad-output",
        ),
        pytest.param(
            ScriptStep(
                "finish", command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.3
            ),
            "script_timeout",
            id="timeout",
        ),
    ],
)
def test_script_failures_become_run_errors(step: ScriptStep, kind: str) -> None:
    workflow = Workflow("talent", input=PostingIn, output=Summary, steps=[step])
    result = run(workflow, None)
    [error] = result.errors
    assert (error.kind, error.step) == (kind, "finish")
    assert error.kind in ERROR_KINDS
    assert error.message.startswith("script step 'finish' ")
    assert result.steps[0].status == "failed"


def test_script_context_carries_dry_run_and_settings() -> None:
    seen: list[ScriptContext] = []

    def finish(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"posting_id": 7, "summary": "x"}

    workflow = Workflow(
        "talent", input=PostingIn, output=Summary, steps=[ScriptStep("finish", run=finish)]
    )
    executor = Executor({}, settings={"sink": "db"})
    result = asyncio.run(executor.run(workflow, INPUT, dry_run=True))
    assert result.ok
    assert result.dry_run
    assert seen == [ScriptContext("talent", "finish", True, {"sink": "db"})]


# ------------------------------------------------------------------ result serialisation


def test_result_as_dict_is_json_serialisable() -> None:
    fake = FakeModel([BAD_WEIGHT, GOOD, {"posting_id": 7, "summary": "Grüße"}])
    result = run(two_steps(), fake)
    data = assert_json_roundtrip(result)
    assert data["status"] == "succeeded"
    assert data["output"] == {"posting_id": 7, "summary": "Grüße"}
    assert data["attempts"] == 3
    assert data["reasks"] == 1
    assert data["usage"]["calls"] == 3
    assert data["fingerprint"] == result.fingerprint
    assert [s["name"] for s in data["steps"]] == ["extract", "summarize"]
    assert [a.as_dict()["number"] for a in result.attempts] == [1, 2, 1]
    json.dumps([a.as_dict() for a in result.attempts])


def test_any_exception_from_an_actor_fails_the_step_not_the_run() -> None:
    from pydantic import BaseModel

    from turing import Executor, FakeModel, LLMStep, Workflow

    class Item(BaseModel):
        item_id: int

    wf = Workflow(
        "boom", input=Item, output=Item, steps=[LLMStep("ask", actor="m", prompt="{{ item_id }}")]
    )
    result = Executor({"m": FakeModel([RuntimeError("socket closed")])}).run_sync(
        wf, {"item_id": 1}
    )
    assert result.status == "failed"
    assert result.errors[0].kind == "actor"
    assert "RuntimeError: socket closed" in result.errors[0].message
    assert len(result.attempts) == 1 and result.attempts[0].error
