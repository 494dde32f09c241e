"""OpenTelemetry traces (`pip install 'turing[otel]'`) following the GenAI conventions.

    invoke_workflow job_skills            a task's run (INTERNAL)
      step extract                        each step (INTERNAL)
        chat qwen2.5:7b                   each model call (CLIENT), re-asks and graders too

Spans go to the application's TracerProvider: the one given, else the global one the
application (or `opentelemetry-instrument`) set; with none set the API's no-op tracer makes
them free. Turing never installs a provider of its own. Attributes follow the GenAI
semantic conventions: `gen_ai.operation.name` (`invoke_workflow`, `chat`),
`gen_ai.workflow.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
`gen_ai.usage.input_tokens` / `output_tokens`, `error.type` with status ERROR on failure;
Turing's own under `turing.*` (task id, subject, step). Prompts and answers
(`gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages`, as JSON)
only when the user opts in: `[observability] capture_content = true`, or the conventions'
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from turing.errors import ActorError, ConfigError
from turing.observe.events import Ended, Observer, split_identity

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from turing.actors.base import Actor, ModelRequest, ModelResponse
    from turing.result import RunResult

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SCOPE = "turing"
# provider prefixes of actor identities -> gen_ai.provider.name (others are used as they are)
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "ollama": "ollama"}
OTHER = "_OTHER"
_NOTHING: AbstractContextManager[None] = nullcontext()


def _ignore(_: RunResult) -> None:
    pass


_NO_TASK: AbstractContextManager[Ended] = nullcontext(_ignore)


def _otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigError(
            "tracing needs the OpenTelemetry API: pip install 'turing[otel]'"
        ) from None
    return trace


def available() -> bool:
    """Whether the OpenTelemetry API can be imported."""
    try:
        _otel()
    except ConfigError:
        return False
    return True


def capture_from_env(env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(CAPTURE_ENV, "")
    return value.strip().lower() in {"true", "1", "yes"}


class Tracing(Observer):
    """Spans for tasks, steps and model calls (see the module docstring)."""

    traces = True

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
    ) -> None:
        trace = _otel()
        from turing import __version__

        self._trace = trace
        self._given = tracer_provider is not None
        self.tracer: Tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self.capture_content = capture_from_env() if capture_content is None else capture_content
        self._wrapped: dict[int, tuple[Actor, Actor]] = {}
        self._actors: dict[str, tuple[str, dict[str, Any]]] = {}  # identity -> span name, attrs

    def task(
        self, workflow: str, version: int, subject: str | None, task_id: int | None
    ) -> AbstractContextManager[Ended]:
        if not self._given and isinstance(
            self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider
        ):  # no provider set yet: the API would hand out no-op spans; build none
            return _NO_TASK
        return self._task(workflow, version, subject, task_id)

    @contextmanager
    def _task(
        self, workflow: str, version: int, subject: str | None, task_id: int | None
    ) -> Iterator[Ended]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": workflow,
            "turing.workflow.version": version,
        }
        if subject is not None:
            attributes["turing.subject"] = subject
        if task_id is not None:
            attributes["turing.task.id"] = task_id
        with self._span(f"invoke_workflow {workflow}", attributes) as span:

            def ended(result: RunResult) -> None:
                usage = result.usage
                span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
                span.set_attribute("turing.fingerprint", result.fingerprint)
                if not result.ok:
                    _failed(span, result.errors[0].kind if result.errors else OTHER)

            yield ended

    def step(self, workflow: str, step: str, kind: str) -> AbstractContextManager[None]:
        if not self._recording():
            return _NOTHING
        return self._step(workflow, step, kind)

    def _recording(self) -> bool:
        """Whether the current span (the task's, the step's) is recorded: its children are
        not when it is not (no provider set, or sampled out by a parent-based sampler), so
        they are not built at all."""
        return bool(self._trace.get_current_span().is_recording())

    @contextmanager
    def _step(self, workflow: str, step: str, kind: str) -> Iterator[None]:
        attributes = {
            "gen_ai.workflow.name": workflow,
            "turing.step.name": step,
            "turing.step.kind": kind,
        }
        with self._span(f"step {step}", attributes):
            yield

    @contextmanager
    def _span(self, name: str, attributes: dict[str, Any], client: bool = False) -> Iterator[Span]:
        kind = self._trace.SpanKind.CLIENT if client else self._trace.SpanKind.INTERNAL
        with self.tracer.start_as_current_span(
            name, kind=kind, attributes=attributes,
            record_exception=False, set_status_on_exception=False,  # no content by default
        ) as span:  # fmt: skip
            try:
                yield span
            except BaseException as exc:
                _failed(span, _error_type(exc))
                raise

    def actor(self, actor: Actor) -> Actor:
        """The actor wrapped so each call is a span (one wrapper per actor)."""
        known = self._wrapped.get(id(actor))
        if known is not None and known[0] is actor:
            return known[1]
        wrapped = _TracedActor(actor, self)
        self._wrapped[id(actor)] = (actor, wrapped)
        return wrapped

    async def call(self, actor: Actor, request: ModelRequest) -> ModelResponse:
        if not self._recording():
            return await actor.complete(request)
        identity = actor.identity
        known = self._actors.get(identity)
        if known is None:
            known = self._actors[identity] = _actor_attributes(identity)
        name, fixed = known
        attributes = {**fixed, "gen_ai.request.temperature": request.temperature}
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if request.seed is not None:
            attributes["gen_ai.request.seed"] = request.seed
        if request.schema is not None:
            attributes["gen_ai.output.type"] = "json"
        if self.capture_content:
            attributes.update(_input_content(request))
        with self._span(name, attributes, client=True) as span:
            response = await actor.complete(request)
            usage = response.usage
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            if response.model:
                span.set_attribute("gen_ai.response.model", response.model)
            if usage.cached:
                span.set_attribute("turing.cached", True)
            if self.capture_content:
                span.set_attribute("gen_ai.output.messages", _output_content(response.text))
            return response


class _TracedActor:
    """An actor whose calls are spans; everything else is the wrapped actor's."""

    def __init__(self, inner: Actor, tracing: Tracing) -> None:
        self.inner = inner
        self._tracing = tracing

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self._tracing.call(self.inner, request)

    def __getattr__(self, name: str) -> Any:  # quote, accepted, handles_timeout, settings
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"Traced({self.inner!r})"


def _failed(span: Span, error_type: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def _error_type(exc: BaseException) -> str:
    """A low-cardinality name for a failure: a run error's kind, an actor error's kind
    (connection, timeout, circuit_open, ...), else the exception's class."""
    error = getattr(exc, "error", None)  # the executor's step failure carries a RunError
    kind = getattr(error, "kind", None)
    if isinstance(kind, str):
        return kind
    if isinstance(exc, ActorError) and exc.kind:
        return str(exc.kind)
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.CancelledError):  # the step's own timeout, or a stop
        return "cancelled"
    return type(exc).__qualname__


def _actor_attributes(identity: str) -> tuple[str, dict[str, Any]]:
    """The span name and the fixed attributes of an actor's calls."""
    provider, model, url = _parse_identity(identity)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    parts = urlsplit(url)
    if parts.hostname:
        attributes["server.address"] = parts.hostname
        attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    return f"chat {model}", attributes


def _parse_identity(identity: str) -> tuple[str, str, str]:
    """provider, model and server URL of an identity ("ollama:qwen2.5:7b@http://h:11434")."""
    head, tail = split_identity(identity)
    provider, colon, model = head.partition(":")
    if not colon:
        provider, model = "", head
    return PROVIDERS.get(provider, provider or OTHER), model or head, tail


def _input_content(request: ModelRequest) -> dict[str, str]:
    system = [m.content for m in request.messages if m.role == "system"]
    chat = [
        {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
        for m in request.messages
        if m.role != "system"
    ]
    out = {"gen_ai.input.messages": json.dumps(chat, ensure_ascii=False)}
    if system:
        parts = [{"type": "text", "content": text} for text in system]
        out["gen_ai.system_instructions"] = json.dumps(parts, ensure_ascii=False)
    return out


def _output_content(text: str) -> str:
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": text}],
        "finish_reason": "stop",
    }
    return json.dumps([message], ensure_ascii=False)
