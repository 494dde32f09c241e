"""What Turing tells observers (metrics, traces) while it works, and the no-op default.

The executor and the processor hold one `Observer` each, given to their constructors;
`NOOP` does nothing, so an unobserved run pays one method call per hook and no more:

- `task(...)` / `step(...)`: context managers around a run and each of its steps (spans);
  the task's yields a callable that is given the finished `RunResult`.
- `actor(actor)`: the actor the executor calls (a tracer wraps it to span each call; the
  no-op returns it unchanged, so disabled tracing costs nothing per call).
- `finished(task, result, outcome)`: a task completed (after its commit).
- `reclaimed(n)`: a claim took back `n` tasks whose lease had run out.
- `watch(store, breakers)`: what metrics read at scrape time (queue counts, circuits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turing.actors.base import Actor
    from turing.actors.breaker import Breakers
    from turing.result import RunResult
    from turing.store.store import Store, TaskRow

Ended = Callable[["RunResult"], None]


def _ignore(_: RunResult) -> None:
    pass


_NO_TASK: AbstractContextManager[Ended] = nullcontext(_ignore)
_NO_STEP: AbstractContextManager[None] = nullcontext()


class Observer:
    """Hooks with no-op defaults: subclass and override what you observe."""

    traces = False  # makes spans (a second tracer would only duplicate them)

    def task(
        self, workflow: str, version: int, subject: str | None, task_id: int | None
    ) -> AbstractContextManager[Ended]:
        """Around one run of a workflow; the value entered is told the result."""
        return _NO_TASK

    def step(self, workflow: str, step: str, kind: str) -> AbstractContextManager[None]:
        """Around one step of a run (a failure leaves it by an exception)."""
        return _NO_STEP

    def actor(self, actor: Actor) -> Actor:
        """The actor to call in place of `actor` (the same one unless calls are traced)."""
        return actor

    def finished(self, task: TaskRow | None, result: RunResult, outcome: str) -> None:
        """A task was completed with `outcome` (an `Outcome`), after its commit."""

    def reclaimed(self, n: int) -> None:
        """A claim took back `n` tasks whose lease had expired."""

    def watch(self, store: Store | None = None, breakers: Breakers | None = None) -> None:
        """What to read when metrics are scraped (the queue's counts, the circuits)."""


NOOP = Observer()


class Observers(Observer):
    """Several observers as one (metrics and traces, say), each told everything."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)
        self.traces = any(o.traces for o in self.observers)

    @contextmanager
    def _task(
        self, workflow: str, version: int, subject: str | None, task_id: int | None
    ) -> Iterator[Ended]:
        with ExitStack() as stack:
            ends = [
                stack.enter_context(o.task(workflow, version, subject, task_id))
                for o in self.observers
            ]

            def ended(result: RunResult) -> None:
                for end in ends:
                    end(result)

            yield ended

    def task(
        self, workflow: str, version: int, subject: str | None, task_id: int | None
    ) -> AbstractContextManager[Ended]:
        return self._task(workflow, version, subject, task_id)

    @contextmanager
    def _step(self, workflow: str, step: str, kind: str) -> Iterator[None]:
        with ExitStack() as stack:
            for o in self.observers:
                stack.enter_context(o.step(workflow, step, kind))
            yield

    def step(self, workflow: str, step: str, kind: str) -> AbstractContextManager[None]:
        return self._step(workflow, step, kind)

    def actor(self, actor: Actor) -> Actor:
        for o in self.observers:
            actor = o.actor(actor)
        return actor

    def finished(self, task: TaskRow | None, result: RunResult, outcome: str) -> None:
        for o in self.observers:
            o.finished(task, result, outcome)

    def reclaimed(self, n: int) -> None:
        for o in self.observers:
            o.reclaimed(n)

    def watch(self, store: Store | None = None, breakers: Breakers | None = None) -> None:
        for o in self.observers:
            o.watch(store, breakers)


def combine(*observers: Observer | None) -> Observer:
    """One observer for all given (None and `NOOP` left out); `NOOP` when none is left."""
    chosen = [o for o in observers if o is not None and o is not NOOP]
    if not chosen:
        return NOOP
    return chosen[0] if len(chosen) == 1 else Observers(chosen)


_URL = re.compile(r"@[A-Za-z][A-Za-z0-9+.-]*://")


def split_identity(identity: str) -> tuple[str, str]:
    """An actor's identity ("ollama:qwen2.5:7b@http://host:11434") as its "provider:model"
    and its server URL ("" when it names none)."""
    found = _URL.search(identity)
    if found is None:
        return identity, ""
    return identity[: found.start()], identity[found.start() + 1 :]


def actor_label(identity: str) -> str:
    """An actor's identity without its server URL ("openai:gpt-4o-mini"): a bounded label
    that never carries credentials a URL might hold."""
    return split_identity(identity)[0]
