"""OpenTelemetry traces with the SDK's in-memory exporter: the task -> step -> call tree,
GenAI names and attributes, error.type on failures, content only when opted in, no global
provider installed, concurrent tasks kept apart, and what happens without OpenTelemetry."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from turing.actors.base import ModelResponse, Usage
from turing.actors.fake import FakeModel
from turing.config import Observability
from turing.errors import ActorError, ConfigError
from turing.executor import Executor
from turing.observe import NOOP, Metrics, Observers, Tracing, combine, tracing_from, with_tracing
from turing.result import RunResult
from turing.steps import LLMStep
from turing.workflow import Workflow


class PostingIn(BaseModel):
    posting_id: int
    text: str


class Skills(BaseModel):
    posting_id: int
    skills: list[str]


class Summary(BaseModel):
    posting_id: int
    summary: str


ONE_STEP = Workflow(
    "job_skills",
    input=PostingIn,
    output=Skills,
    steps=[LLMStep("extract", "Skills in: {{ text }}", system="You extract skills.")],
    subject_key="posting_id",
)
TWO_STEPS = Workflow(
    "job_summary",
    input=PostingIn,
    output=Summary,
    steps=[
        LLMStep("extract", "Skills in: {{ text }}", output=Skills),
        LLMStep("summarize", "Summarize {{ extract.skills }} for {{ posting_id }}"),
    ],
    subject_key="posting_id",
)
INPUT = {"posting_id": 7, "text": "Python and SQL, secret sauce"}
GOOD = {"posting_id": 7, "skills": ["python"]}


class Named(FakeModel):
    """A fake model that says it is a real one."""

    def __init__(self, answers: Any, identity: str) -> None:
        super().__init__(answers)
        self._identity = identity

    @property
    def identity(self) -> str:
        return self._identity


def answer(value: Any, inp: int = 11, out: int = 5) -> ModelResponse:
    return ModelResponse(json.dumps(value), Usage(inp, out, 1), model="qwen2.5:7b-q4")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def run(tracing: Tracing, workflow: Workflow, model: FakeModel, **kw: Any) -> RunResult:
    executor = Executor({"default": model}, observer=tracing)
    return asyncio.run(executor.run(workflow, INPUT, subject="7", task_id=42, **kw))


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_task_step_call_tree_with_genai_names_and_attributes(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    model = Named([answer(GOOD)], "ollama:qwen2.5:7b@http://gpu-1:11434")
    result = run(Tracing(provider), ONE_STEP, model)
    assert result.ok
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"invoke_workflow job_skills", "step extract", "chat qwen2.5:7b"}
    [task] = spans["invoke_workflow job_skills"]
    [step] = spans["step extract"]
    [call] = spans["chat qwen2.5:7b"]
    assert parent_of(task) is None
    assert parent_of(step) == task.context.span_id
    assert parent_of(call) == step.context.span_id
    assert task.kind == SpanKind.INTERNAL and call.kind == SpanKind.CLIENT
    assert dict(task.attributes or {}) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "job_skills",
        "turing.workflow.version": 1,
        "turing.subject": "7",
        "turing.task.id": 42,
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 5,
        "turing.fingerprint": result.fingerprint,
    }
    attrs = dict(call.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.request.model"] == "qwen2.5:7b"
    assert attrs["gen_ai.response.model"] == "qwen2.5:7b-q4"
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["server.address"] == "gpu-1" and attrs["server.port"] == 11434
    assert "error.type" not in attrs
    assert all(s.status.status_code != StatusCode.ERROR for s in (task, step, call))


def test_steps_and_reasks_each_get_their_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    model = Named(
        [answer({"posting_id": 7}), answer(GOOD), answer({"posting_id": 7, "summary": "ok"})],
        "openai:gpt-4o-mini@https://api.openai.com/v1",
    )
    assert run(Tracing(provider), TWO_STEPS, model).ok
    spans = by_name(exporter.get_finished_spans())
    [task] = spans["invoke_workflow job_summary"]
    steps = {s.name: s for s in spans["step extract"] + spans["step summarize"]}
    assert {parent_of(s) for s in steps.values()} == {task.context.span_id}
    calls = spans["chat gpt-4o-mini"]
    assert len(calls) == 3  # the first answer was re-asked
    under = [parent_of(c) for c in calls]
    assert under.count(steps["step extract"].context.span_id) == 2
    assert under.count(steps["step summarize"].context.span_id) == 1
    assert {c.attributes["gen_ai.provider.name"] for c in calls} == {"openai"}  # type: ignore[index]


def test_a_failing_call_sets_error_type_and_status_on_call_step_and_task(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    model = Named([ActorError("connection refused", kind="connection")], "ollama:m@http://h:1")
    result = run(Tracing(provider), ONE_STEP, model)
    assert not result.ok
    spans = by_name(exporter.get_finished_spans())
    [call] = spans["chat m"]
    [step] = spans["step extract"]
    [task] = spans["invoke_workflow job_skills"]
    assert call.attributes["error.type"] == "connection"  # type: ignore[index]
    assert step.attributes["error.type"] == "actor"  # type: ignore[index]
    assert task.attributes["error.type"] == "actor"  # type: ignore[index]
    for s in (call, step, task):
        assert s.status.status_code == StatusCode.ERROR
        assert not s.events  # no exception event: its message may quote content


def test_no_content_by_default(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    run(Tracing(provider), ONE_STEP, Named([answer(GOOD)], "ollama:m@http://h:1"))
    for span in exporter.get_finished_spans():
        text = json.dumps(dict(span.attributes or {})) + json.dumps(
            [dict(e.attributes or {}) for e in span.events]
        )
        assert "secret sauce" not in text and "python" not in text
        assert not any(k.endswith(("messages", "instructions")) for k in span.attributes or {})


@pytest.mark.parametrize("how", ["setting", "env"])
def test_content_when_opted_in(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "env":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        tracing = Tracing(provider)
    else:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
        tracing = tracing_from(Observability(capture_content=True))
        assert isinstance(tracing, Tracing)
        tracing = Tracing(provider, capture_content=tracing.capture_content)
    run(tracing, ONE_STEP, Named([answer(GOOD)], "ollama:m@http://h:1"))
    [call] = by_name(exporter.get_finished_spans())["chat m"]
    attrs = dict(call.attributes or {})
    assert json.loads(str(attrs["gen_ai.system_instructions"])) == [
        {"type": "text", "content": "You extract skills."}
    ]
    [asked] = json.loads(str(attrs["gen_ai.input.messages"]))
    assert asked["role"] == "user"
    assert asked["parts"] == [{"type": "text", "content": "Skills in: " + INPUT["text"]}]
    [answered] = json.loads(str(attrs["gen_ai.output.messages"]))
    assert answered["role"] == "assistant"
    assert json.loads(answered["parts"][0]["content"]) == GOOD


def test_turing_never_installs_a_global_provider(exporter: InMemorySpanExporter) -> None:
    before = trace.get_tracer_provider()
    tracing = tracing_from(Observability())  # "auto": the API is installed here
    assert isinstance(tracing, Tracing)
    run(tracing, ONE_STEP, Named([answer(GOOD)], "ollama:m@http://h:1"))
    assert trace.get_tracer_provider() is before
    assert isinstance(before, trace.ProxyTracerProvider)  # still nobody's provider
    assert exporter.get_finished_spans() == ()


def test_concurrent_tasks_keep_their_own_trees(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Tasks run side by side on one event loop: each call span is under its own task's."""

    async def slow(request: Any) -> ModelResponse:
        await asyncio.sleep(0.01)
        return answer(GOOD)

    class Slow(FakeModel):
        async def complete(self, request: Any) -> ModelResponse:
            self.requests.append(request)
            return await slow(request)

    executor = Executor({"default": Slow()}, observer=Tracing(provider))

    async def both() -> None:
        await asyncio.gather(
            *(executor.run(ONE_STEP, INPUT, subject=str(i), task_id=i) for i in range(5))
        )

    asyncio.run(both())
    spans = exporter.get_finished_spans()
    ids = {s.context.span_id: s for s in spans}

    def task_of(span: ReadableSpan) -> ReadableSpan:
        while span.parent is not None:
            span = ids[span.parent.span_id]
        return span

    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == 5
    tasks = {task_of(c).attributes["turing.task.id"] for c in calls}  # type: ignore[index]
    assert tasks == set(range(5))
    assert len({c.context.trace_id for c in calls}) == 5


def test_without_opentelemetry_auto_is_a_no_op_and_asking_for_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    assert tracing_from(Observability()) is NOOP
    assert tracing_from(Observability(tracing=False)) is NOOP
    with pytest.raises(ConfigError, match=r"turing\[otel\]"):
        tracing_from(Observability(tracing=True))
    with pytest.raises(ConfigError, match=r"turing\[otel\]"):
        Tracing()
    result = Executor({"default": FakeModel([answer(GOOD)])}, observer=NOOP).run_sync(
        ONE_STEP, INPUT
    )
    assert result.ok


def test_combined_observers_each_see_everything(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    metrics = Metrics()
    both = combine(metrics, None, Tracing(provider))
    assert isinstance(both, Observers)
    result = run(both, ONE_STEP, Named([answer(GOOD)], "ollama:m@http://h:1"))  # type: ignore[arg-type]
    both.finished(None, result, "succeeded")
    assert len(exporter.get_finished_spans()) == 3
    assert (
        metrics.registry.get_sample_value(
            "turing_tasks_finished_total", {"workflow": "job_skills", "outcome": "succeeded"}
        )
        == 1
    )
    assert combine(None, NOOP) is NOOP
    assert combine(metrics) is metrics


def test_a_tracer_given_explicitly_is_not_doubled_by_the_settings(
    provider: TracerProvider,
) -> None:
    mine = Tracing(provider)
    assert with_tracing(mine, Observability()) is mine  # "auto" adds no second tracer
    metrics = Metrics()
    both = with_tracing(combine(metrics, mine), Observability(tracing=True))
    assert isinstance(both, Observers) and both.observers == (metrics, mine)
    added = with_tracing(metrics, Observability())
    assert isinstance(added, Observers) and added.traces
    assert with_tracing(metrics, Observability(tracing=False)) is metrics
    assert with_tracing(None, Observability(tracing=False)) is NOOP


def test_a_provider_the_application_sets_later_gets_the_spans(tmp_path: Any) -> None:
    """Tracing built before the application sets its global provider (no spans then) traces
    once it is set: in a fresh interpreter, as setting a global provider is once per process."""
    script = tmp_path / "later.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, json
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
            from pydantic import BaseModel
            from turing.actors.fake import FakeModel
            from turing.executor import Executor
            from turing.observe import Tracing
            from turing.steps import LLMStep
            from turing.workflow import Workflow

            class Io(BaseModel):
                posting_id: int

            ONE_STEP = Workflow(
                "job_skills", input=Io, output=Io, steps=[LLMStep("extract", "{{ posting_id }}")]
            )
            INPUT = GOOD = {"posting_id": 7}
            executor = Executor({"default": FakeModel([GOOD, GOOD])}, observer=Tracing())
            asyncio.run(executor.run(ONE_STEP, INPUT))  # no provider yet: no spans
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            asyncio.run(executor.run(ONE_STEP, INPUT))
            print(json.dumps(sorted(s.name for s in exporter.get_finished_spans())))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["chat fake", "invoke_workflow job_skills", "step extract"]


def test_a_call_the_step_timeout_cuts_off_is_an_error_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    slow = Workflow(
        "job_skills",
        input=PostingIn,
        output=Skills,
        steps=[LLMStep("extract", "Skills in: {{ text }}", timeout=0.01)],
    )
    result = run(Tracing(provider), slow, FakeModel([answer(GOOD)], delay=30))
    assert not result.ok
    spans = by_name(exporter.get_finished_spans())
    [call] = spans["chat fake"]
    assert call.attributes["error.type"] == "cancelled"  # type: ignore[index]
    assert call.status.status_code == StatusCode.ERROR
    [task] = spans["invoke_workflow job_skills"]
    assert task.attributes["error.type"] == "actor"  # type: ignore[index]
