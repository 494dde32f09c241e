"""Workflows: a named, versioned unit of work with contracts, steps and a fingerprint.

Everything that can be checked without running is checked when the workflow is built:
contracts compile, step names are unique and do not shadow input fields, dependencies
point backwards, and every template placeholder resolves to an input field or to a
property of an earlier step's output. A broken workflow never gets as far as a model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turing._json import digest
from turing.checks import Check, validate_checks
from turing.contracts import Contract, Schema, as_contract
from turing.errors import WorkflowDefinitionError
from turing.limits.config import WorkflowLimits
from turing.limits.spec import LimitSpecError
from turing.retry import RetryPolicy
from turing.review import ReviewRule, hold_reason, validate_rules
from turing.sources import Sink, Source
from turing.steps import LLMStep, ScriptStep, Step
from turing.templates import Placeholder, PromptTemplate

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ANY_OBJECT: Schema = {"type": "object"}


@dataclass(frozen=True)
class CompiledStep:
    """A step with its dependencies resolved, templates parsed and target contract set."""

    step: Step
    deps: tuple[str, ...]
    visible: frozenset[str]
    contract: Contract | None
    prompt: PromptTemplate | None = None
    system: PromptTemplate | None = None

    @property
    def name(self) -> str:
        return self.step.name


class Workflow:
    """Declare once, run many times. See `turing.Executor` for running it."""

    def __init__(
        self,
        name: str,
        *,
        input: Any,
        output: Any,
        steps: Sequence[Step],
        version: int = 1,
        alias: int | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        subject_key: str | None = None,
        source: Source | None = None,
        sink: Sink | None = None,
        priority: int = 0,
        retry: RetryPolicy | None = None,
        limits: WorkflowLimits | Mapping[str, Any] | None = None,
        checks: Sequence[Check] = (),
        review: ReviewRule | Sequence[ReviewRule] = (),
    ) -> None:
        if not _NAME.match(name):
            raise WorkflowDefinitionError(name, "name must be lower_snake_case")
        if version < 1:
            raise WorkflowDefinitionError(name, f"version must be >= 1, got {version}")
        self.name = name
        self.version = version
        self.alias = alias
        self.description = " ".join(description.split())
        self.tags = tuple(tags)
        try:
            self.input = as_contract(input, name=f"{name}.input", version=version)
            self.output = as_contract(output, name=f"{name}.output", version=version)
        except (TypeError, ValueError) as exc:
            raise WorkflowDefinitionError(name, str(exc)) from exc
        if subject_key is not None and subject_key not in self.input.fields:
            raise WorkflowDefinitionError(
                name, f"subject_key {subject_key!r} is not an input field"
            )
        self.subject_key = subject_key
        if source is not None and (source.key or subject_key) is None:
            raise WorkflowDefinitionError(name, "a workflow with a source needs a subject_key")
        self.source = source
        if sink is not None and (problems := sink.problems(self.output.fields)):
            raise WorkflowDefinitionError(name, "sink: " + "; ".join(problems))
        self.sink = sink
        self.priority = priority
        self.retry = retry or RetryPolicy()
        try:
            declared = WorkflowLimits.parse(limits) if limits is not None else None
        except LimitSpecError as exc:
            raise WorkflowDefinitionError(name, f"limits: {exc}") from None
        # shared limits on the scope workflow:<name> (with turing.toml's: the stricter wins)
        self.limits: WorkflowLimits | None = declared or None
        if problems := validate_checks(checks):
            raise WorkflowDefinitionError(name, "checks: " + "; ".join(problems))
        self.checks: tuple[Check, ...] = tuple(checks)  # on the validated final output
        rules = (review,) if isinstance(review, ReviewRule) else tuple(review)
        if problems := validate_rules(rules):
            raise WorkflowDefinitionError(name, "review: " + "; ".join(problems))
        self.review: tuple[ReviewRule, ...] = rules  # when a validated output waits for a person
        self.steps: tuple[CompiledStep, ...] = self._compile(list(steps))
        self._settings: list[dict[str, Any]] | None = None
        self._fingerprints: dict[tuple[tuple[str, str], ...], str] = {}

    # ----------------------------------------------------------------- loading checks
    def _compile(self, steps: list[Step]) -> tuple[CompiledStep, ...]:
        if not steps:
            raise WorkflowDefinitionError(self.name, "a workflow needs at least one step")
        compiled: dict[str, CompiledStep] = {}
        for index, step in enumerate(steps):
            self._check_step_shape(step, compiled)
            deps = tuple(compiled) if step.after is None else tuple(step.after)
            visible = set(deps)
            for dep in deps:
                visible |= compiled[dep].visible
            last = index == len(steps) - 1
            contract = self._step_contract(step, last)
            cs = CompiledStep(step, deps, frozenset(visible), contract)
            if isinstance(step, LLMStep):
                prompt = self._template(step, "prompt", step.prompt, visible, compiled)
                system = (
                    self._template(step, "system", step.system, visible, compiled)
                    if step.system
                    else None
                )
                cs = CompiledStep(step, deps, frozenset(visible), contract, prompt, system)
            compiled[step.name] = cs
        return tuple(compiled.values())

    def _check_step_shape(self, step: Step, earlier: Mapping[str, CompiledStep]) -> None:
        if not _NAME.match(step.name):
            raise WorkflowDefinitionError(
                self.name, "step name must be lower_snake_case", step=step.name
            )
        if step.name in earlier:
            raise WorkflowDefinitionError(self.name, "duplicate step name", step=step.name)
        if step.name in self.input.fields:
            raise WorkflowDefinitionError(
                self.name, "step name shadows an input field of the same name", step=step.name
            )
        for dep in step.after or ():
            if dep not in earlier:
                raise WorkflowDefinitionError(
                    self.name,
                    f"depends on {dep!r}, which is not a step declared before it",
                    step=step.name,
                )
        if isinstance(step, ScriptStep) and (step.run is None) == (not step.command):
            raise WorkflowDefinitionError(
                self.name, "a script step needs exactly one of run= or command=", step=step.name
            )
        if step.timeout <= 0:
            raise WorkflowDefinitionError(self.name, "timeout must be positive", step=step.name)
        if isinstance(step, LLMStep) and step.max_reasks < 0:
            raise WorkflowDefinitionError(self.name, "max_reasks must be >= 0", step=step.name)
        if isinstance(step, LLMStep) and (problem := _cascade_problem(step)):
            raise WorkflowDefinitionError(self.name, problem, step=step.name)

    def _step_contract(self, step: Step, last: bool) -> Contract | None:
        if step.output is not None:
            try:
                return as_contract(
                    step.output, name=f"{self.name}.{step.name}", version=self.version
                )
            except (TypeError, ValueError) as exc:
                raise WorkflowDefinitionError(self.name, str(exc), step=step.name) from exc
        if last:
            return self.output
        if isinstance(step, LLMStep):
            return Contract(_ANY_OBJECT, name=f"{self.name}.{step.name}", version=self.version)
        return None

    def _template(
        self,
        step: Step,
        field: str,
        source: str,
        visible: set[str],
        compiled: Mapping[str, CompiledStep],
    ) -> PromptTemplate:
        try:
            template = PromptTemplate(source)
        except ValueError as exc:
            raise WorkflowDefinitionError(self.name, f"{field}: {exc}", step=step.name) from exc
        for ph in template.placeholders:
            problem = self._resolve(ph, visible, compiled)
            if problem:
                raise WorkflowDefinitionError(
                    self.name, f"{field} placeholder {{{{ {ph} }}}}: {problem}", step=step.name
                )
        return template

    def _resolve(
        self, ph: Placeholder, visible: set[str], compiled: Mapping[str, CompiledStep]
    ) -> str | None:
        if ph.root in self.input.fields:
            schema: Schema | None = self.input.fields[ph.root]
        elif ph.root in visible:
            contract = compiled[ph.root].contract
            schema = contract.schema if contract else None
        elif ph.root in compiled:
            return f"step {ph.root!r} is not a dependency of this step"
        else:
            known = sorted(set(self.input.fields) | visible)
            return f"unknown name {ph.root!r} (known: {', '.join(known) or 'none'})"
        for depth, attr in enumerate(ph.attrs):
            props = _properties(schema)
            if props is None:
                return None  # schema does not say; nothing more to check
            if attr not in props:
                where = ".".join((ph.root, *ph.attrs[:depth])) or ph.root
                return f"{where} has no field {attr!r} (fields: {', '.join(sorted(props))})"
            schema = props[attr]
        return None

    # ------------------------------------------------------------------ identity
    @property
    def final_step(self) -> CompiledStep:
        return self.steps[-1]

    def bindable(self, output: Mapping[str, Any]) -> dict[str, Any]:
        """The output as a sink binds it: every field the contract declares is a parameter
        (None when the answer left an optional one out), so `:field` never goes unbound."""
        return {k: None for k in self.output.fields} | dict(output)

    def hold_reason(self, output: Any, data: Mapping[str, Any], subject: str) -> str | None:
        """Why a validated output waits for a reviewer instead of its sink (None: it does
        not): a review rule it meets, or a check with `on_fail="review"` it fails."""
        reasons = [hold_reason(self.review, output, data, subject)] if self.review else []
        for check in self.checks:
            if check.on_fail == "review" and (failed := check.violations(output, data)):
                reasons.append(f"check {check.name}: " + "; ".join(v.message for v in failed))
        found = [r for r in reasons if r]
        return "; ".join(found) if found else None

    def fingerprint(self, actor_identities: Mapping[str, str] | None = None) -> str:
        """Hash of contracts, templates, step and actor settings and script code.

        Script code is hashed once, when first needed: that is the code this process runs,
        even if the file changes on disk afterwards.
        """
        identities = actor_identities or {}
        key = tuple(sorted(identities.items()))
        cached = self._fingerprints.get(key)
        if cached is None:
            cached = self._fingerprints[key] = digest(
                {
                    "name": self.name,
                    "version": self.version,
                    "input": self.input.hash,
                    "output": self.output.hash,
                    **({"checks": [c.describe() for c in self.checks]} if self.checks else {}),
                    "steps": [
                        {
                            **settings,
                            "actor_identity": _identity(cs.step, identities),
                        }
                        for cs, settings in zip(self.steps, self._step_settings(), strict=True)
                    ],
                }
            )
        return cached

    def _step_settings(self) -> list[dict[str, Any]]:
        if self._settings is None:
            self._settings = [
                {**cs.step.settings(), "contract": cs.contract.hash if cs.contract else None}
                for cs in self.steps
            ]
        return self._settings

    def describe(self) -> dict[str, Any]:
        """Summary used by `turing workflows show`, the registry and capabilities."""
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "description": self.description,
            "tags": list(self.tags),
            "subject_key": self.subject_key,
            "priority": self.priority,
            # only when declared, so definitions without limits stay as they were; never in
            # the fingerprint: a changed limit does not make earlier results stale
            **({"limits": self.limits.as_dict()} if self.limits else {}),
            "source": _describe_source(self.source),
            "sink": _describe_sink(self.sink),
            **({"checks": [c.describe() for c in self.checks]} if self.checks else {}),
            **({"review": [r.describe() for r in self.review]} if self.review else {}),
            "input": self.input.schema,
            "input_hash": self.input.hash,
            "output_hash": self.output.hash,
            "output": self.output.schema,
            "fingerprint": self.fingerprint(),
            "steps": [
                {
                    "name": cs.name,
                    "kind": cs.step.kind,
                    "after": list(cs.deps),
                    **(_describe_actor(cs.step) if isinstance(cs.step, LLMStep) else {}),
                    "timeout": cs.step.timeout,
                }
                for cs in self.steps
            ],
        }

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, v{self.version})"


def _cascade_problem(step: LLMStep) -> str | None:
    """What is wrong with a step's actor references (a cascade especially), or None."""
    refs = step.actors
    if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        return f"actor must be a reference or a non-empty list of references, got {step.actor!r}"
    if len(set(refs)) < len(refs):
        return f"actor cascade {list(refs)} names an actor twice"
    if step.escalate_after < 0:
        return "escalate_after must be >= 0"
    return None


def _identity(step: Step, identities: Mapping[str, str]) -> Any:
    """What the fingerprint records of a step's actors: the identity of its one actor
    (as before cascades existed), or the identities of every actor of its cascade."""
    if not isinstance(step, LLMStep):
        return None
    if not step.cascade:
        return identities.get(step.actors[0])
    return [identities.get(ref) for ref in step.actors]


def _describe_actor(step: LLMStep) -> dict[str, Any]:
    """`actor` (the first one asked) and, for a cascade, every actor in order."""
    first = {"actor": step.actors[0]}
    return first | {"cascade": list(step.actors)} if step.cascade else first


def _describe_source(source: Source | None) -> Any:
    if source is None:
        return None
    if source.fn is not None:
        out: dict[str, Any] = {"callable": getattr(source.fn, "__qualname__", repr(source.fn))}
    else:
        out = {"sql": source.sql, "key": source.key}
    if source.filters:  # only when declared, so definitions without filters stay as they were
        out["filters"] = {
            name: {"column": f.column, "op": f.op, "type": f.type, "description": f.description}
            for name, f in source.filters.items()
        }
    return out


def _describe_sink(sink: Sink | None) -> Any:
    if sink is None:
        return None
    if sink.fn is not None:
        return {"callable": getattr(sink.fn, "__qualname__", repr(sink.fn))}
    return {"statements": [{"sql": s.sql, "for_each": s.for_each} for s in sink.statements]}


def _properties(schema: Schema | None) -> dict[str, Any] | None:
    """Declared properties of an object schema (looking through `X | None`), or None."""
    if not isinstance(schema, dict):
        return None
    for option in schema.get("anyOf") or schema.get("oneOf") or ():
        if isinstance(option, dict) and option.get("type") != "null":
            return _properties(option)
    props = schema.get("properties")
    if isinstance(props, dict) and schema.get("type", "object") == "object":
        return props
    return None
