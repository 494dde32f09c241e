"""Step declarations: what runs inside a workflow.

An `LLMStep` renders a prompt template and asks an actor (by reference, resolved from the
project's actor mapping) for JSON; a `ScriptStep` runs a Python callable or a subprocess
that reads JSON on stdin and writes JSON on stdout. Each step sees the workflow input's
fields and the outputs of the steps it depends on, by step name. `after=None` means
"after every step declared before me", so plain lists run in order; naming dependencies
lets independent steps run in parallel.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turing.consistency import Consistency
from turing.grading import Grade
from turing.sandbox import Sandbox

DEFAULT_MAX_REASKS = 2
# Seconds per model call when neither the actor (`timeout` in `[actors.NAME]`) nor the step
# says: a local 7B model answers a step in seconds on a GPU and in tens of seconds on a CPU;
# a call that hangs longer holds a slot (per try: retries get their own). `turing stats
# --timeouts` recommends one per step from the measured p99.
DEFAULT_LLM_TIMEOUT_S = 60.0


class _DefaultTimeout(float):
    """The default timeout of a step: a float that knows nobody chose it."""


def effective_timeout(
    step: LLMStep, actor_timeout: float | None, actor: str = ""
) -> tuple[float, str]:
    """The one timeout of each call of `step` (each try), and where it comes from: the
    actor's `timeout` setting when set (turing.toml decides, as for temperature and seed),
    else the step's own `timeout=` when given, else `DEFAULT_LLM_TIMEOUT_S`."""
    if actor_timeout is not None:
        return float(actor_timeout), f"actor {actor or step.actors[0]}"
    if step.timeout_set:
        return float(step.timeout), "step"
    return float(step.timeout), "default"


@dataclass(frozen=True)
class LLMStep:
    """One model call (re-asked while its answer breaks the contract).

    `actor` is one actor reference, or a cascade: a list of references, cheapest first
    (`actor=["small", "large"]`). The first answers; an answer that still breaks the
    contract after repair (or fails a check or grade set to escalate) goes to the next
    actor, which is asked the original prompt afresh. An earlier actor gets
    `escalate_after` re-asks first (default 0: escalate on the first failure); the last
    gets `max_reasks`. Transport failures (timeouts, 5xx, 429) are retried by the actor
    and never escalate.
    """

    name: str
    prompt: str
    actor: str | Sequence[str] = "default"
    system: str | None = None
    output: Any = None
    temperature: float = 0.0
    timeout: float = _DefaultTimeout(DEFAULT_LLM_TIMEOUT_S)
    max_reasks: int = DEFAULT_MAX_REASKS
    max_tokens: int | None = None
    seed: int | None = None
    after: tuple[str, ...] | None = None
    # quality gates on the final step's accepted answer (turing.grading, turing.consistency)
    grade: Grade | None = None
    consistency: Consistency | None = None
    escalate_after: int = 0  # re-asks an earlier actor of a cascade gets before the next

    kind = "llm"

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str):  # a cascade: kept as a tuple (hashable, frozen)
            refs = tuple(self.actor)  # one actor in a list is that actor, fingerprint and all
            object.__setattr__(self, "actor", refs[0] if len(refs) == 1 else refs)

    @property
    def actors(self) -> tuple[str, ...]:
        """The actor references in the order they are asked (one unless a cascade)."""
        return (self.actor,) if isinstance(self.actor, str) else tuple(self.actor)

    @property
    def cascade(self) -> bool:
        return len(self.actors) > 1

    @property
    def timeout_set(self) -> bool:
        """Whether the step's `timeout` was given (else it is the default)."""
        return not isinstance(self.timeout, _DefaultTimeout)

    def settings(self) -> dict[str, Any]:
        """What about this step changes its behaviour, for the workflow fingerprint."""
        return {
            "kind": self.kind,
            "name": self.name,
            "prompt": self.prompt,
            "system": self.system,
            "actor": self.actor if isinstance(self.actor, str) else list(self.actor),
            "temperature": self.temperature,
            "timeout": float(self.timeout),
            "max_reasks": self.max_reasks,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "after": self.after,
        } | self._gates()

    def _gates(self) -> dict[str, Any]:
        """Grading and consistency settings, only when set (other fingerprints unchanged)."""
        out: dict[str, Any] = {}
        if self.cascade:  # only a cascade has levels to escalate through
            out["escalate_after"] = self.escalate_after
        if self.grade is not None:
            out["grade"] = self.grade.settings()
        if self.consistency is not None:
            out["consistency"] = self.consistency.settings()
        return out


@dataclass(frozen=True)
class ScriptStep:
    """A deterministic step: `run(data)` / `run(data, ctx)` or `command` (JSON over stdio).

    A `command` runs confined by `sandbox` (see `turing.sandbox.Sandbox`: explicit
    environment, the project folder, its own process group, CPU/memory/file limits, no
    network); `env` adds declared variables. A `run` callable runs in-process, unconfined.
    """

    name: str
    run: Callable[..., Any] | None = None
    command: Sequence[str] | None = None
    timeout: float = 30.0
    output: Any = None
    after: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    sandbox: Sandbox = field(default_factory=Sandbox)

    kind = "script"

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "timeout": self.timeout,
            "after": self.after,
            "code": self.code_hash(),
        }
        if self.command and self.sandbox != Sandbox():  # default: fingerprints unchanged
            out["sandbox"] = self.sandbox.settings()
        return out

    def code_hash(self) -> str:
        """Hash of the callable's source, or of the command and any script files it names."""
        h = hashlib.sha256()
        if self.run is not None:
            try:
                h.update(inspect.getsource(self.run).encode())
            except (OSError, TypeError):
                h.update(getattr(self.run, "__qualname__", repr(self.run)).encode())
        for arg in self.command or ():
            h.update(arg.encode())
            path = Path(arg)
            if path.suffix and path.is_file():
                h.update(path.read_bytes())
        return h.hexdigest()


Step = LLMStep | ScriptStep
