"""Turing's exception hierarchy.

    TuringError                      base of everything Turing raises on purpose
    ├── ConfigError                  turing.toml or environment overrides are wrong
    ├── WorkflowDefinitionError      a workflow cannot be loaded (bad template, step, contract)
    ├── UnknownWorkflowError         no workflow with that name or alias
    ├── ContractViolation            data broke a contract (carries the violations)
    │   └── InputInvalid             ... the input, before any step ran (CLI exit code 2)
    ├── TemplateRenderError          a prompt could not be fully rendered at run time
    ├── ActorError                   an actor (model or provider) failed or is unknown
    ├── ScriptError                  a script step crashed, timed out or printed non-JSON
    └── StoreError                   Turing's database failed (connection lost, server
                                     restarting, lock timeout): never the task's fault

Errors raised inside a workflow run are caught by the executor and reported on the
result; callers see them as exceptions only where no result object can exist yet
(configuration, definitions, lookups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TuringError(Exception):
    """Base class; `exit_code` is what the CLI exits with when this reaches it."""

    exit_code: int = 1


class ConfigError(TuringError):
    """The project file or an environment override is invalid."""


class WorkflowDefinitionError(TuringError):
    """A workflow definition is inconsistent; raised when it is loaded, not when it runs."""

    def __init__(self, workflow: str, message: str, *, step: str | None = None) -> None:
        where = f"workflow {workflow!r}" + (f", step {step!r}" if step else "")
        super().__init__(f"{where}: {message}")
        self.workflow = workflow
        self.step = step


class UnknownWorkflowError(TuringError):
    """Lookup by name or alias found nothing."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        hint = ", ".join(sorted(known)) or "none registered"
        super().__init__(f"unknown workflow {name!r} (known: {hint})")
        self.name = name


@dataclass(frozen=True)
class Violation:
    """One failed rule: where (JSON path), which rule, what value, and the message."""

    path: str
    rule: str
    message: str
    value: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [rule: {self.rule}]"


class ContractViolation(TuringError):
    """Data did not satisfy a contract."""

    def __init__(
        self,
        contract: str,
        violations: Sequence[Violation],
        *,
        workflow: str | None = None,
        version: int | None = None,
        what: str = "data",
    ) -> None:
        self.contract = contract
        self.violations = list(violations)
        self.workflow = workflow
        self.version = version
        where = f" of workflow {workflow!r} v{version}" if workflow else ""
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"{what} breaks contract {contract!r}{where}:\n{lines}")


class InputInvalid(ContractViolation):
    """The input broke the workflow's input contract; nothing ran."""

    exit_code = 2


class TemplateRenderError(TuringError):
    """A prompt template could not be rendered completely."""


class ActorError(TuringError):
    """An actor failed.

    `transient` says whether trying again may help (timeouts, refused connections, 5xx,
    429); `retry_after` is the server's Retry-After in seconds when it sent one; `kind` is
    a short label for reports: timeout, connection, server, rate_limit, auth, not_found,
    bad_request, bad_response, unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        kind: str = "unknown",
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.kind = kind
        self.retries = 0  # set by the managed actor when it gave up after retrying


class ScriptError(TuringError):
    """A script step failed; `kind` is crash, timeout or bad_output."""

    def __init__(self, step: str, kind: str, message: str) -> None:
        super().__init__(f"script step {step!r} {kind}: {message}")
        self.step = step
        self.kind = kind


class StoreError(TuringError):
    """Turing's own database failed under us: the connection dropped, the server is
    restarting, a lock or deadlock timed out. `transient` says whether the same operation
    may succeed later. A task that met one is released, not failed: the fault is not its."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient
