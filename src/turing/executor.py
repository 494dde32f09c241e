"""The executor: one workflow on one input.

validate input (before any model call) -> steps in dependency order, independent ones
concurrently -> for LLM steps: render, call, repair, validate, re-ask with the errors at
most `max_reasks` times -> validate the final output -> a `RunResult`. Failures inside
the run never raise; they end the run with a typed error on the result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from graphlib import TopologicalSorter
from typing import Any, cast

from turing._json import truncate
from turing.actors.base import (
    Actor,
    Message,
    ModelRequest,
    ModelResponse,
    Remembers,
    Usage,
)
from turing.actors.limited import call_tokens
from turing.actors.managed import RetriedResponse
from turing.consistency import CONSISTENCY_SUFFIX, Consistency, disagreement, subject_of
from turing.contracts import Contract
from turing.errors import (
    ActorError,
    ScriptError,
    StoreError,
    TemplateRenderError,
    TuringError,
    Violation,
)
from turing.grading import GRADE_SUFFIX, Grade, same_model_error
from turing.limits.budget import Budget
from turing.observe.events import NOOP, Observer
from turing.repair import repair
from turing.result import Attempt, ErrorKind, RunError, RunResult, StepResult
from turing.review import feedback_messages
from turing.scripts import ScriptContext, run_script
from turing.steps import LLMStep, ScriptStep
from turing.workflow import CompiledStep, Workflow

ActorResolver = Callable[[str], Actor]

REASK = (
    "Your previous answer did not satisfy the required JSON Schema.\n"
    "Problems found:\n{problems}\n"
    "Reply with only the corrected JSON, no explanations."
)


log = logging.getLogger(__name__)


class _StepFailed(Exception):
    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


def actors_from(mapping: Mapping[str, Actor]) -> ActorResolver:
    """Resolver over a plain dict of actor references."""

    def resolve(ref: str) -> Actor:
        try:
            return mapping[ref]
        except KeyError:
            known = ", ".join(sorted(mapping)) or "none"
            raise ActorError(f"no actor {ref!r} is configured (known: {known})") from None

    return resolve


@dataclass(frozen=True)
class RunLimits:
    """Most tokens (input + output, all attempts) or cost one run may spend."""

    tokens: int | None = None
    cost: float | None = None


class Executor:
    """Runs workflows with the given actors; `settings` are passed to script contexts;
    `observer` is told of each run, step and model call (traces; `NOOP`: nothing)."""

    def __init__(
        self,
        actors: ActorResolver | Mapping[str, Actor],
        *,
        settings: Mapping[str, Any] | None = None,
        limits: RunLimits | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.limits = limits
        self.observer = observer or NOOP
        self.resolve: ActorResolver = _observed(
            actors if callable(actors) else actors_from(actors), self.observer
        )
        self.settings = dict(settings or {})

    def fingerprint(self, workflow: Workflow) -> str:
        """Workflow fingerprint including the identity of each resolvable actor."""
        identities: dict[str, str] = {}
        for cs in workflow.steps:
            if isinstance(cs.step, LLMStep):
                for ref in cs.step.actors:  # every actor of a cascade
                    try:
                        identities[ref] = self.resolve(ref).identity
                    except TuringError:
                        identities[ref] = "unresolved"
        return workflow.fingerprint(identities)

    def run_sync(
        self, workflow: Workflow, inputs: Mapping[str, Any], *, dry_run: bool = False
    ) -> RunResult:
        return asyncio.run(self.run(workflow, inputs, dry_run=dry_run))

    async def run(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        dry_run: bool = False,
        fresh: bool = False,
        budget: Budget | None = None,
        subject: str | None = None,
        task_id: int | None = None,
        feedback: str | None = None,
    ) -> RunResult:
        """Run `workflow` on `inputs`. `fresh`: no answer comes from the response cache (a
        task that failed before is tried again: its cached answers are what failed). `budget`:
        what the batch may still spend; each call's quote is reserved in it first.
        `subject` and `task_id` (the queue's) only label what the observer is told.
        `feedback`: a reviewer sent the task's held answer back with a comment (see
        `turing.review.feedback_messages`); the final step asks again from there."""
        with self.observer.task(workflow.name, workflow.version, subject, task_id) as ended:
            started = time.perf_counter()
            result = RunResult(
                workflow.name, workflow.version, self.fingerprint(workflow), dry_run=dry_run
            )
            run = _Run(self, workflow, dict(inputs), result, dry_run)
            run.fresh = fresh or feedback is not None
            run.budget = budget
            run.feedback = feedback
            try:
                result.output = await run.execute()
            except _StepFailed as failed:
                result.status = "failed"
                result.errors.append(failed.error)
            result.duration_s = time.perf_counter() - started
            ended(result)
        return result


class _Run:
    """State of one execution: the input, the outputs so far, and the result being built."""

    def __init__(
        self,
        executor: Executor,
        workflow: Workflow,
        data: dict[str, Any],
        result: RunResult,
        dry_run: bool,
    ) -> None:
        self.executor = executor
        self.workflow = workflow
        self.data = data
        self.result = result
        self.dry_run = dry_run
        self.fresh = False  # no answers from the response cache
        self.budget: Budget | None = None  # the batch's (or the worker's) budget
        self.feedback: str | None = None  # a reviewer's comment on the held answer
        self.check_failed = False  # an answer failed a check (consistency may then run)
        self.outputs: dict[str, Any] = {}

    def _contract_error(
        self, kind: str, what: str, contract: Contract, value: Any, step: str | None
    ) -> None:
        problems = contract.violations(value)
        if problems:
            wf = self.workflow
            raise _StepFailed(
                RunError(
                    kind,
                    f"{what} breaks contract {contract.name!r} "
                    f"of workflow {wf.name!r} v{wf.version}: "
                    # the paths in the message itself, so run, history and runs show name them
                    + "; ".join(f"{v.path}: {v.message}" for v in problems[:5])
                    + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""),
                    step=step,
                    violations=tuple(problems),
                )
            )

    async def execute(self) -> Any:
        wf = self.workflow
        self._contract_error("input_invalid", "input", wf.input, self.data, None)
        # the input as its contract means it: declared defaults applied; an optional field
        # without a default is None for the templates (`{% if company %}`), not undefined
        self.data = {k: None for k in wf.input.fields} | wf.input.with_defaults(self.data)
        if len(wf.steps) == 1:  # the common case: no graph, no gather (a task each)
            only = wf.steps[0]
            self.outputs[only.name] = await self.step(only)
        else:
            await self._steps()
        final = self.outputs[wf.final_step.name]
        self._contract_error("output_invalid", "output", wf.output, final, wf.final_step.name)
        self._subject_error(final, wf.final_step.name)
        if not isinstance(wf.final_step.step, LLMStep):  # a model's answer was checked already
            failed, _ = self._checked(final)
            if failed:
                raise _StepFailed(
                    RunError(
                        ErrorKind.OUTPUT_INVALID,
                        "output fails its checks: "
                        + "; ".join(f"{v.rule}: {v.message}" for v in failed[:3]),
                        step=wf.final_step.name,
                        violations=failed,
                    )
                )
        return wf.output.with_defaults(final)

    def _checked(self, value: Any) -> tuple[tuple[Violation, ...], tuple[Violation, ...]]:
        """The workflow's checks on a validated final output: the failures that send the
        answer back (`on_fail="reask"` or `"escalate"`) and those only recorded (`"flag"`)."""
        failed: list[Violation] = []
        flagged: list[Violation] = []
        for check in self.workflow.checks:
            found = check.violations(value, self.data)
            (flagged if check.on_fail in ("flag", "review") else failed).extend(found)
        return tuple(failed), tuple(flagged)

    async def _steps(self) -> None:
        """Steps as their dependencies finish; independent ones at once."""
        wf = self.workflow
        by_name = {cs.name: cs for cs in wf.steps}
        order = {cs.name: i for i, cs in enumerate(wf.steps)}
        graph = TopologicalSorter({cs.name: cs.deps for cs in wf.steps})
        graph.prepare()
        while graph.is_active():
            ready = sorted(graph.get_ready(), key=order.__getitem__)
            done = await asyncio.gather(
                *(self.step(by_name[n]) for n in ready), return_exceptions=True
            )
            for name, value in zip(ready, done, strict=True):
                if isinstance(value, BaseException):
                    raise value
                self.outputs[name] = value
                graph.done(name)

    def _subject_violations(self, value: Any) -> list[Violation]:
        """An answer must be about this task's subject: a model that answers `item_id: 999`
        for item 1 would otherwise have its result written to item 999."""
        key = self.workflow.subject_key
        if key is None or not isinstance(value, dict) or key not in value:
            return []
        expected = self.data.get(key)
        if expected is None or str(value[key]) == str(expected):
            return []
        return [
            Violation(
                f"$.{key}",
                "subject",
                f"must be {expected!r}, the subject of this task (the answer is about "
                f"{value[key]!r})",
                truncate(repr(value[key])),
            )
        ]

    def _subject_error(self, value: Any, step: str) -> None:
        problems = self._subject_violations(value)
        if problems:
            raise _StepFailed(
                RunError(
                    ErrorKind.OUTPUT_INVALID,
                    f"output is about another subject than the task's ({problems[0].message})",
                    step=step,
                    violations=tuple(problems),
                )
            )

    async def step(self, cs: CompiledStep) -> Any:
        variables = {**self.data, **{name: self.outputs[name] for name in cs.visible}}
        record = StepResult(cs.name, cs.step.kind)
        self.result.steps.append(record)
        started = time.perf_counter()
        try:
            with self.executor.observer.step(self.workflow.name, cs.name, cs.step.kind):
                if isinstance(cs.step, LLMStep):
                    value = await self.llm(cs, cs.step, variables, record)
                else:
                    value = await self.script(cs, cs.step, variables, record)
        except _StepFailed:
            record.status = "failed"
            raise
        finally:
            record.duration_s = time.perf_counter() - started
        record.output = value
        return value

    async def script(
        self, cs: CompiledStep, step: ScriptStep, variables: dict[str, Any], record: StepResult
    ) -> Any:
        ctx = ScriptContext(self.workflow.name, step.name, self.dry_run, self.executor.settings)
        record.attempts = 1
        try:
            value = await run_script(step, variables, ctx)
        except ScriptError as exc:
            raise _StepFailed(RunError(f"script_{exc.kind}", str(exc), step=step.name)) from exc
        if cs.contract is not None and cs is not self.workflow.final_step:
            self._contract_error(
                "script_bad_output", f"output of step {step.name!r}", cs.contract, value, step.name
            )
        return value

    def _attempt(
        self,
        where: tuple[str, int, str, tuple[dict[str, str], ...], float],
        raw: str,
        usage: Usage,
        **extra: Any,
    ) -> None:
        """Record one call: where = (step, attempt number, actor, messages sent, start time)."""
        step, number, actor, sent, began = where
        latency = time.perf_counter() - began
        self.result.attempts.append(
            Attempt(step, number, actor, sent, raw, usage, latency, **extra)
        )

    def _reserve(self, actor: Actor, request: ModelRequest, step: str) -> list[Any]:
        """Hold the call's quote in the run's and the batch's budgets before the call; a
        call that does not fit is not made. The run's own limit fails the run (it cannot
        finish within it); the batch's stops it before it spends (the task is deferred)."""
        # getattr, not isinstance: a runtime Protocol check costs ~12 µs a call
        quoting = getattr(actor, "quote", None)
        quote = quoting(request) if quoting is not None else _quote(request)
        held: list[Any] = []
        limits = self.executor.limits
        if limits is not None and (limits.tokens is not None or limits.cost is not None):
            spent = self.result.usage
            tokens = spent.total_tokens + quote.total_tokens
            if limits.tokens is not None and tokens > limits.tokens:
                raise _StepFailed(RunError(
                    ErrorKind.BUDGET, f"run used {spent.total_tokens} tokens; the next call "
                    f"needs up to {quote.total_tokens} of the run's limit {limits.tokens}", step,
                ))  # fmt: skip
            if limits.cost is not None and spent.cost + quote.cost > limits.cost:
                raise _StepFailed(RunError(
                    ErrorKind.BUDGET, f"run cost {spent.cost:.6f}; the next call may cost "
                    f"{quote.cost:.6f} of the run's limit {limits.cost:g}", step,
                ))  # fmt: skip
        if self.budget is not None and not self.budget.unlimited:
            reservation = self.budget.reserve(quote)
            if reservation is None:
                raise _StepFailed(RunError(
                    ErrorKind.BUDGET_STOP, f"not started: {self.budget.refused}", step,
                    transient=True,
                ))  # fmt: skip
            held.append(reservation)
        return held

    def _settle(self, held: list[Any], used: Usage) -> None:
        if self.budget is not None:
            for reservation in held:
                self.budget.settle(reservation, used)
        held.clear()

    def _check_budget(self, step: str) -> None:
        """Stop a run that spent more than the executor's per-run limits allow."""
        limits = self.executor.limits
        if limits is None:
            return
        spent = self.result.usage
        if limits.tokens is not None and spent.total_tokens > limits.tokens:
            raise _StepFailed(
                RunError(
                    "budget", f"run used {spent.total_tokens} tokens, limit {limits.tokens}", step
                )
            )
        if limits.cost is not None and spent.cost > limits.cost:
            raise _StepFailed(
                RunError("budget", f"run cost {spent.cost:.6f}, limit {limits.cost:g}", step)
            )

    async def llm(
        self, cs: CompiledStep, step: LLMStep, variables: dict[str, Any], record: StepResult
    ) -> Any:
        assert cs.prompt is not None and cs.contract is not None
        try:
            cascade = [self.executor.resolve(ref) for ref in step.actors]  # before any call
            asked = [Message("user", cs.prompt.render(variables))]
            if cs.system is not None:
                asked.insert(0, Message("system", cs.system.render(variables)))
            if self.feedback is not None and cs is self.workflow.final_step:
                asked += feedback_messages(self.feedback)  # the held answer, the comment
        except TemplateRenderError as exc:
            raise _StepFailed(
                RunError("template", f"prompt not rendered: {exc}", step.name)
            ) from exc
        except ActorError as exc:
            raise _StepFailed(RunError("actor", str(exc), step.name)) from exc
        contract = cs.contract
        grader = self._grader(cs, step, cascade)
        actor, level, tries = cascade[0], 0, 0  # the actor asked, its cascade level, its calls
        messages = list(asked)
        number = 0
        while True:
            number += 1
            tries += 1
            request = ModelRequest(
                messages=tuple(messages),
                schema=contract.schema,
                schema_name=contract.name.replace(".", "_"),
                temperature=step.temperature,
                timeout=step.timeout,
                max_tokens=step.max_tokens,
                seed=step.seed,
                variables=variables,
                dry_run=self.dry_run,
                workflow=self.workflow.name,
                from_cache=tries == 1 and not self.fresh,
            )
            held = self._reserve(actor, request, step.name)
            began = time.perf_counter()
            where = (step.name, number, actor.identity, _dump(messages), began)
            try:
                if getattr(actor, "handles_timeout", False):  # per call, retries included
                    response = await actor.complete(request)
                else:
                    async with asyncio.timeout(step.timeout):  # no extra task, unlike wait_for
                        response = await actor.complete(request)
            except StoreError as exc:  # the cache or a shared limit: our database, not the model
                self._settle(held, Usage())
                self._attempt(where, "", Usage(), error=f"store: {exc}")
                record.attempts = number
                raise _StepFailed(
                    RunError(ErrorKind.STORE, f"database: {exc}", step.name, transient=True)
                ) from exc
            except Exception as exc:  # any provider failure ends the step, never the run
                message = _actor_message(exc, step.timeout)
                spent = Usage(calls=1, retries=getattr(exc, "retries", 0))
                self._settle(held, spent)
                self._attempt(where, "", spent, error=message)
                record.attempts = number
                raise _StepFailed(
                    RunError(
                        _actor_kind(exc),
                        f"{actor.identity}: {message}",
                        step.name,
                        transient=not isinstance(exc, ActorError) or exc.transient,
                        retry_after=exc.retry_after if isinstance(exc, ActorError) else None,
                    )
                ) from exc
            except BaseException:  # cancelled: the reservation goes back
                self._settle(held, Usage())
                raise
            self._settle(held, response.usage)
            outcome = repair(response.text, contract, self.data)
            violations = outcome.violations
            flagged: tuple[Violation, ...] = ()
            if outcome.ok and cs is self.workflow.final_step:
                violations += tuple(self._subject_violations(outcome.value))
                if not violations:
                    failed, flagged = self._checked(outcome.value)
                    violations += failed
                    self.check_failed = self.check_failed or bool(failed)
            answer_at = len(self.result.attempts)
            self._attempt(
                where,
                response.text,
                response.usage,
                repairs=outcome.repairs,
                violations=violations + flagged,
                # why the managed actor retried before this answer (timeout, 500, 429...)
                error=response.retried if isinstance(response, RetriedResponse) else None,
            )
            record.attempts = number
            record.usage = record.usage + response.usage
            record.repairs.extend(outcome.repairs)
            self._check_budget(step.name)
            if outcome.ok and not violations and grader is not None:
                assert step.grade is not None
                low = await self._grade(step, step.grade, grader, outcome.value, number)
                if low is not None:  # the answer's call carries the low grade too
                    answered = self.result.attempts[answer_at]
                    self.result.attempts[answer_at] = replace(
                        answered, violations=(*answered.violations, low)
                    )
                    if step.grade.on_low == "review":  # accepted, held for a person
                        self.result.holds.append(f"grade: {low.message}")
                    else:
                        violations = (low,)
            if outcome.ok and not violations:
                if tries == 1 and hasattr(actor, "accepted"):  # only a validated answer
                    await _remember(cast(Remembers, actor), request, response)
                if step.consistency is not None and cs is self.workflow.final_step:
                    await self._consistent(step, step.consistency, actor, request, outcome.value)
                return outcome.value
            move = self._next_move(step, violations, level, tries, len(cascade))
            if move == "escalate":  # the next actor gets the original prompt, afresh
                level, tries = level + 1, 0
                actor = cascade[level]
                messages = list(asked)
            elif move == "reask":
                problems = "\n".join(f"- {v}" for v in violations)
                messages += [
                    Message("assistant", response.text),
                    Message("user", REASK.format(problems=problems)),
                ]
            else:
                break
        tried = (
            f"after asking {' -> '.join(step.actors)} ({number} calls)"
            if step.cascade
            else f"after {step.max_reasks} re-ask(s)"
        )
        raise _StepFailed(
            RunError(
                "output_invalid",
                f"output of step {step.name!r} still breaks contract {contract.name!r} "
                f"{tried}: " + "; ".join(f"{v.path}: {v.message}" for v in violations[:3]),
                step.name,
                violations=violations,
            )
        )

    def _next_move(
        self, step: LLMStep, violations: tuple[Violation, ...], level: int, tries: int, levels: int
    ) -> str:
        """After a failed answer: "reask" the same actor, "escalate" to the next actor of
        the cascade, or "stop". The last actor gets `max_reasks` re-asks. An earlier one
        gets `escalate_after` re-asks, except when every failure is a check or grade set
        to re-ask (`on_fail` / `on_low` "reask"): then up to `max_reasks` before escalating."""
        reasks = tries - 1
        if level == levels - 1:
            return "reask" if reasks < step.max_reasks else "stop"
        allowed = step.max_reasks if self._reask_only(step, violations) else step.escalate_after
        return "reask" if reasks < allowed else "escalate"

    def _reask_only(self, step: LLMStep, violations: tuple[Violation, ...]) -> bool:
        """Whether every failure is a check or a low grade whose setting is "reask" (a
        contract or subject violation, or an "escalate" one, moves up a cascade)."""
        reask = {f"check:{c.name}" for c in self.workflow.checks if c.on_fail == "reask"}
        if step.grade is not None and step.grade.on_low == "reask":
            reask.add("grade")
        return all(v.rule in reask for v in violations)

    def _grader(self, cs: CompiledStep, step: LLMStep, cascade: list[Actor]) -> Actor | None:
        """The grader of the final step, refused (before any call) when it is an
        answering model (any actor of a cascade) and `allow_same_model` is not set."""
        if step.grade is None and step.consistency is None:
            return None
        if cs is not self.workflow.final_step:
            raise _StepFailed(RunError(
                ErrorKind.ACTOR, f"step {step.name!r}: grade= and consistency= apply to the "
                "workflow's final step only", step.name,
            ))  # fmt: skip
        if step.grade is None:
            return None
        try:
            grader = self.executor.resolve(step.grade.actor)
        except ActorError as exc:
            raise _StepFailed(RunError(ErrorKind.ACTOR, f"grader: {exc}", step.name)) from exc
        for actor in cascade:
            if grader.identity == actor.identity and not step.grade.allow_same_model:
                raise _StepFailed(RunError(
                    ErrorKind.ACTOR, same_model_error(step.name, grader.identity, actor.identity),
                    step.name,
                ))  # fmt: skip
        return grader

    async def _gate_call(
        self, actor: Actor, request: ModelRequest, step: str, number: int
    ) -> tuple[ModelResponse, tuple[str, int, str, tuple[dict[str, str], ...], float]]:
        """One grader or consistency call: its quote reserved in the budgets first, a
        failure recorded as an attempt and ending the step (as for the answering call)."""
        held = self._reserve(actor, request, step)
        began = time.perf_counter()
        where = (step, number, actor.identity, _dump(list(request.messages)), began)
        try:
            if getattr(actor, "handles_timeout", False):
                response = await actor.complete(request)
            else:
                async with asyncio.timeout(request.timeout):
                    response = await actor.complete(request)
        except StoreError as exc:
            self._settle(held, Usage())
            self._attempt(where, "", Usage(), error=f"store: {exc}")
            raise _StepFailed(
                RunError(ErrorKind.STORE, f"database: {exc}", step, transient=True)
            ) from exc
        except Exception as exc:
            message = _actor_message(exc, request.timeout)
            spent = Usage(calls=1, retries=getattr(exc, "retries", 0))
            self._settle(held, spent)
            self._attempt(where, "", spent, error=message)
            raise _StepFailed(RunError(
                _actor_kind(exc), f"{actor.identity}: {message}", step,
                transient=not isinstance(exc, ActorError) or exc.transient,
                retry_after=exc.retry_after if isinstance(exc, ActorError) else None,
            )) from exc  # fmt: skip
        except BaseException:
            self._settle(held, Usage())
            raise
        self._settle(held, response.usage)
        return response, where

    async def _grade(
        self, step: LLMStep, grade: Grade, grader: Actor, answer: Any, number: int
    ) -> Violation | None:
        """Ask the grader about `answer`; the violation a low score is, or None."""
        name = step.name + GRADE_SUFFIX
        contract = grade.contract()
        messages = tuple(Message(role, text) for role, text in grade.messages(self.data, answer))
        request = ModelRequest(
            messages=messages,
            schema=contract.schema,
            schema_name="grade",
            temperature=0.0,
            timeout=grade.timeout,
            max_tokens=grade.max_tokens,
            variables={"input": self.data, "answer": answer, "rubric": grade.rubric},
            dry_run=self.dry_run,
            workflow=self.workflow.name,
            from_cache=False,
        )
        response, where = await self._gate_call(grader, request, name, number)
        outcome = repair(response.text, contract)
        low = None
        if outcome.ok:
            _, _, low = grade.verdict(outcome.value)
        self._attempt(
            where, response.text, response.usage, repairs=outcome.repairs,
            violations=outcome.violations,
        )  # fmt: skip
        self._check_budget(name)
        if not outcome.ok:
            raise _StepFailed(RunError(
                ErrorKind.OUTPUT_INVALID, "the grader's answer breaks its contract: "
                + "; ".join(f"{v.path}: {v.message}" for v in outcome.violations[:3]),
                name, violations=outcome.violations,
            ))  # fmt: skip
        return low

    async def _consistent(
        self,
        step: LLMStep,
        consistency: Consistency,
        actor: Actor,
        asked: ModelRequest,
        accepted: Any,
    ) -> None:
        """On a sampled task, ask k-1 more times at a higher temperature; fail the run
        when the accepted answer lacks agreement."""
        wf = self.workflow
        failed_check = consistency.after_check_failure and self.check_failed
        if not (
            failed_check or consistency.sampled(wf.name, subject_of(self.data, wf.subject_key))
        ):
            return
        name = step.name + CONSISTENCY_SUFFIX
        contract = self.workflow.final_step.contract
        assert contract is not None
        request = replace(asked, temperature=consistency.temperature, from_cache=False)
        samples: list[Any] = []
        recorded: list[tuple[tuple[Any, ...], ModelResponse, Any, tuple[Violation, ...]]] = []
        for _ in range(consistency.k - 1):
            response, where = await self._gate_call(actor, request, name, 1)
            outcome = repair(response.text, contract, self.data)
            problems = outcome.violations
            if outcome.ok:
                problems += tuple(self._subject_violations(outcome.value))
                if not problems:
                    problems += self._checked(outcome.value)[0]
            samples.append(outcome.value if outcome.ok and not problems else _INVALID)
            recorded.append((where, response, outcome, problems))
        rate, ok, differ = consistency.judge(accepted, samples)
        for (where, response, outcome, problems), fields in zip(recorded, differ, strict=True):
            extra = (disagreement(fields, rate, consistency.k),) if fields else ()
            self._attempt(
                where, response.text, response.usage, repairs=outcome.repairs,
                violations=problems + extra,
            )  # fmt: skip
        self._check_budget(name)
        if not ok:
            violation = Violation(
                "$", "consistency", f"agreement {rate:.2f} over {consistency.k} answers "
                f"({consistency.agree}) is not a majority", f"{rate:.2f}",
            )  # fmt: skip
            raise _StepFailed(RunError(
                ErrorKind.OUTPUT_INVALID, f"output of step {step.name!r} is not consistent: "
                + violation.message, step.name, violations=(violation,),
            ))  # fmt: skip


_INVALID = object()  # a consistency answer that failed its contract or checks: disagrees


async def _remember(actor: Remembers, request: ModelRequest, response: ModelResponse) -> None:
    """Caching is best effort: a cache that fails (its database blinked) costs a later
    call, never this run's result."""
    try:
        await actor.accepted(request, response)
    except Exception as exc:
        log.warning("could not cache an answer (%s: %s)", type(exc).__name__, exc)


def _observed(resolve: ActorResolver, observer: Observer) -> ActorResolver:
    """The resolver, its actors given to the observer (which may wrap them to trace each
    call); unobserved, the resolver itself: nothing added to a call."""
    if observer is NOOP:
        return resolve
    return lambda ref: observer.actor(resolve(ref))


def _quote(request: ModelRequest) -> Usage:
    """An actor that cannot price itself: its tokens at most, at no cost."""
    prompt, answer = call_tokens(request)
    return Usage(input_tokens=prompt, output_tokens=answer, calls=1)


def _actor_kind(exc: Exception) -> ErrorKind:
    """An open circuit or a period budget without room (not called: the task is deferred),
    else a model failure."""
    if isinstance(exc, ActorError) and exc.kind in (ErrorKind.CIRCUIT_OPEN, ErrorKind.BUDGET_WAIT):
        return ErrorKind(exc.kind)
    return ErrorKind.ACTOR


def _actor_message(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer after {timeout:g}s"
    if isinstance(exc, ActorError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _dump(messages: list[Message]) -> tuple[dict[str, str], ...]:
    return tuple(m.as_dict() for m in messages)
