"""What the pending backlog will cost, before any of it is spent.

Per workflow and LLM step (its actor): the tasks waiting (pending in the queue, plus what
discovery would enqueue), the prompt tokens of a sample of them (the real templates rendered
with the tasks' inputs as the executor does, counted with the model's tokenizer where one
is available: `tiktoken` for OpenAI models, else ~4 characters a token), the answer tokens
and calls per task that history shows for this fingerprint (else the workflow, else stated
defaults), and the cost at the actor's prices, synchronously and through a provider batch.

A step whose prompt needs an earlier step's output is rendered with that output missing:
its prompt count is a lower bound (`partial` says so).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turing.actors.base import estimate_tokens
from turing.errors import TuringError
from turing.sources import input_of, subject_of
from turing.steps import LLMStep
from turing.store.estimates import StepHistory, step_history
from turing.store.store import Store
from turing.workflow import CompiledStep, Workflow

log = logging.getLogger(__name__)

APPROXIMATE = "approximate: ~4 chars/token"
DEFAULT_ANSWER_TOKENS = 200  # answer tokens per call when history has none
DEFAULT_CALLS_PER_TASK = 1.0  # calls per task (no re-asks) when history has none
REASK_TOKENS = 60  # the re-ask instruction and the listed problems, roughly
BATCH_PROVIDERS = ("openai", "anthropic")  # provider batch APIs at half price
BATCH_FACTOR = 0.5

Counter = Callable[[str], int]


@dataclass(frozen=True)
class Backlog:
    """A workflow's waiting tasks: `queued` pending in the queue, `new` that discovery
    would enqueue, and the inputs of up to `sample` of them."""

    queued: int
    new: int
    samples: tuple[dict[str, Any], ...] = ()
    error: str | None = None  # the source failed: only the queued tasks are counted

    @property
    def tasks(self) -> int:
        return self.queued + self.new


@dataclass
class StepEstimate:
    """One LLM step of one workflow over its backlog."""

    workflow: str
    step: str
    actor: str
    model: str
    tasks: int
    sampled: int
    prompt_per_task: float  # first ask, measured on the sample
    calls_per_task: float
    answer_per_call: float
    prompt_tokens: int  # every call over every task (re-asks carry the conversation)
    answer_tokens: int
    cost: float | None  # None: the actor has no prices
    batch_cost: float | None  # None: no provider batch API for it
    tokenizer: str
    history: str  # where calls and answers per task came from
    partial: bool = False  # an earlier step's output was missing from the prompt

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "step": self.step,
            "actor": self.actor,
            "model": self.model,
            "tasks": self.tasks,
            "sampled": self.sampled,
            "prompt_tokens_per_task": round(self.prompt_per_task, 1),
            "calls_per_task": round(self.calls_per_task, 3),
            "answer_tokens_per_call": round(self.answer_per_call, 1),
            "prompt_tokens": self.prompt_tokens,
            "answer_tokens": self.answer_tokens,
            "cost": None if self.cost is None else round(self.cost, 6),
            "batch_cost": None if self.batch_cost is None else round(self.batch_cost, 6),
            "tokenizer": self.tokenizer,
            "history": self.history,
            "partial": self.partial,
        }


@dataclass
class Estimate:
    backlog: dict[str, Backlog] = field(default_factory=dict)
    steps: list[StepEstimate] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return sum(s.cost or 0.0 for s in self.steps)

    @property
    def batch_cost(self) -> float:
        """Every step that can go through a batch at the batch rate, the others as they are."""
        return sum(
            s.batch_cost if s.batch_cost is not None else (s.cost or 0.0) for s in self.steps
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflows": {
                name: {"tasks": b.tasks, "queued": b.queued, "new": b.new}
                | ({"error": b.error} if b.error else {})
                for name, b in self.backlog.items()
            },
            "steps": [s.as_dict() for s in self.steps],
            "tasks": sum(b.tasks for b in self.backlog.values()),
            "prompt_tokens": sum(s.prompt_tokens for s in self.steps),
            "answer_tokens": sum(s.answer_tokens for s in self.steps),
            "cost": round(self.cost, 6),
            "batch_cost": round(self.batch_cost, 6),
        }


def backlog(store: Store, wf: Workflow, sample: int) -> Backlog:
    """The workflow's pending tasks and the source's items that have no task yet (what
    `turing discover` would enqueue), with up to `sample` inputs (queued ones first)."""
    queue = store.queue_overview([wf.name])
    pending, known = store.preview(wf.name, sample)
    samples = [t.input for t in pending]
    new, error = 0, None
    if wf.source is not None:
        key = wf.source.key or wf.subject_key
        assert key is not None
        fields = wf.input.fields
        try:
            for rows in wf.source.stream(store.db):
                for r in rows:
                    subject = subject_of(r, key)
                    if subject in known:
                        continue
                    known.add(subject)
                    new += 1
                    if len(samples) < sample:
                        samples.append(input_of(r, fields))
        except Exception as exc:  # as `turing discover` does: say so, count the rest
            error = f"source of {wf.name!r} failed: {type(exc).__name__}: {exc}"
            new = 0
    return Backlog(queue.pending + queue.waiting_retry, new, tuple(samples), error)


def tokenizer(actor: Any) -> tuple[Counter, str]:
    """The actor's token counter and its name: tiktoken for an OpenAI model when installed
    (and its encoding loads), else the approximation."""
    settings = getattr(actor, "settings", None)
    if settings is None or getattr(settings, "provider", "") != "openai":
        return estimate_tokens, APPROXIMATE
    try:
        import tiktoken
    except ImportError:
        return estimate_tokens, f"{APPROXIMATE} (pip install 'turing[estimate]' for tiktoken)"
    try:
        try:
            encoding = tiktoken.encoding_for_model(settings.model)
        except KeyError:  # a model tiktoken does not know: the current OpenAI encoding
            encoding = tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # the encoding is downloaded once; offline it cannot be
        log.info("tiktoken unavailable (%s): approximating", exc)
        return estimate_tokens, f"{APPROXIMATE} (tiktoken could not load its encoding)"
    return (lambda text: len(encoding.encode(text))), f"tiktoken {encoding.name}"


def prompt_tokens(
    wf: Workflow, cs: CompiledStep, data: dict[str, Any], count: Counter
) -> tuple[int, bool]:
    """The tokens of the step's first ask for one input (system, prompt and the output
    schema, which providers count as input too); True when an earlier step's output was
    missing (the count is then a lower bound)."""
    assert cs.prompt is not None and cs.contract is not None
    variables = {k: None for k in wf.input.fields} | wf.input.with_defaults(dict(data))
    variables |= dict.fromkeys(cs.visible)  # earlier steps' outputs: not known before the run
    partial = bool(cs.visible)
    texts = []
    for template in (cs.system, cs.prompt):
        if template is None:
            continue
        try:
            texts.append(template.render(variables))
        except Exception:  # an earlier step's output was needed: the template's own text
            texts.append(template.source)
            partial = True
    texts.append(json.dumps(cs.contract.schema, separators=(",", ":")))
    return sum(count(t) for t in texts), partial


def history_of(store: Store, workflow: str, fingerprint: str) -> tuple[dict[str, StepHistory], str]:
    """Calls and tokens per step from this fingerprint's runs, else the workflow's."""
    found = step_history(store.db, workflow, fingerprint)
    if found:
        runs = next(iter(found.values())).runs
        return found, f"fingerprint {fingerprint[:8]} ({runs} runs)"
    found = step_history(store.db, workflow)
    if found:
        runs = next(iter(found.values())).runs
        return found, f"workflow, every version ({runs} runs)"
    return {}, (
        f"none: defaults {DEFAULT_CALLS_PER_TASK:g} call/task, "
        f"{DEFAULT_ANSWER_TOKENS} answer tokens/call"
    )


def extrapolate(tasks: int, prompt: float, calls: float, answer: float) -> tuple[int, int]:
    """(prompt, answer) tokens of `tasks` tasks: each re-ask sends the conversation so far
    (the prompt, the answer and the problems) again."""
    extra = max(0.0, calls - 1.0)
    per_task_prompt = prompt * calls + extra * (answer + REASK_TOKENS)
    return round(tasks * per_task_prompt), round(tasks * calls * answer)


def price(actor: Any, prompt: int, answer: int) -> tuple[float | None, float | None]:
    """(sync cost, batch cost) at the actor's prices; None where it has none (no prices,
    or no provider batch API)."""
    settings = getattr(actor, "settings", None)
    if settings is None:
        return None, None
    cost = float(settings.cost(prompt, answer))
    if settings.provider not in BATCH_PROVIDERS:
        return cost, None
    batch = getattr(settings, "batch_cost", None)
    return cost, float(batch(prompt, answer)) if batch is not None else cost * BATCH_FACTOR


def estimate(
    store: Store,
    workflows: Iterable[Workflow],
    resolve: Callable[[str], Any],
    fingerprint: Callable[[Workflow], str],
    *,
    sample: int = 20,
) -> Estimate:
    """The estimate of every LLM step of `workflows` over their backlog. `resolve` gives a
    step's actor (for its tokenizer and prices), `fingerprint` a workflow's current one."""
    out = Estimate()
    for wf in workflows:
        waiting = backlog(store, wf, sample)
        out.backlog[wf.name] = waiting
        found, source = history_of(store, wf.name, fingerprint(wf))
        for cs in wf.steps:
            if isinstance(cs.step, LLMStep):
                out.steps.append(
                    _step(
                        wf,
                        cs,
                        cs.step,
                        waiting=waiting,
                        found=found,
                        source=source,
                        resolve=resolve,
                    )
                )
    return out


def _step(
    wf: Workflow,
    cs: CompiledStep,
    step: LLMStep,
    *,
    waiting: Backlog,
    found: dict[str, StepHistory],
    source: str,
    resolve: Callable[[str], Any],
) -> StepEstimate:
    ref = step.actors[0]  # a cascade's first actor answers every task first
    try:
        actor = resolve(ref)
    except TuringError:
        actor = None
    count, how = tokenizer(actor)
    measured = [prompt_tokens(wf, cs, data, count) for data in waiting.samples]
    prompt = sum(t for t, _ in measured) / len(measured) if measured else 0.0
    seen = found.get(cs.name)
    if seen is not None and seen.calls:
        calls = seen.calls / seen.runs
        answer = seen.output_tokens / seen.calls
        where = source
    else:
        calls, answer = DEFAULT_CALLS_PER_TASK, float(DEFAULT_ANSWER_TOKENS)
        where = source if not found else f"{source}; none for this step: defaults"
    prompt_total, answer_total = extrapolate(waiting.tasks, prompt, calls, answer)
    cost, batch = price(actor, prompt_total, answer_total)
    settings = getattr(actor, "settings", None)
    return StepEstimate(
        wf.name,
        cs.name,
        ref,
        getattr(settings, "model", "") or (getattr(actor, "identity", "") if actor else ""),
        waiting.tasks,
        len(measured),
        prompt,
        calls,
        answer,
        prompt_total,
        answer_total,
        cost,
        batch,
        how,
        where,
        any(p for _, p in measured),
    )
