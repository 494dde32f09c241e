"""Running script steps: Python callables and JSON-over-stdio subprocesses, with timeouts.

Subprocesses run confined by their step's `Sandbox` (`turing.sandbox`); callables run on a
thread of this process and are not confined.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import queue
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from turing import sandbox
from turing._json import shorten
from turing.errors import ScriptError
from turing.sandbox import CANNOT_START, NetworkIsolationUnavailable
from turing.steps import ScriptStep


@dataclass(frozen=True)
class ScriptContext:
    """What a script may know beyond its data: where it runs and whether effects are allowed."""

    workflow: str
    step: str
    dry_run: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


async def run_script(step: ScriptStep, data: dict[str, Any], ctx: ScriptContext) -> Any:
    """Run one script step; raise ScriptError(kind=crash|timeout|bad_output) on failure."""
    if step.command:
        return await _run_subprocess(step, data, ctx)
    assert step.run is not None
    fn = step.run
    args: tuple[Any, ...] = (data, ctx) if _wants_context(fn) else (data,)
    try:
        if inspect.iscoroutinefunction(fn):
            result = await asyncio.wait_for(fn(*args), step.timeout)
        else:
            result = await asyncio.wait_for(_in_daemon_thread(fn, *args), step.timeout)
    except TimeoutError:
        raise ScriptError(step.name, "timeout", f"no result after {step.timeout:g}s") from None
    except ScriptError:
        raise
    except Exception as exc:
        raise ScriptError(step.name, "crash", f"{type(exc).__name__}: {exc}") from exc
    return _jsonable(step, result)


class _DaemonPool:
    """Reusable daemon threads for script callables.

    A thread cannot be killed: when a step times out, its thread is abandoned (it is a
    daemon, so it never holds up the interpreter's exit) and a fresh one takes its place.
    Reusing threads avoids starting one per call, which dominates no-op workloads.
    """

    def __init__(self, size: int = 32) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._threads = 0
        self._size = size
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._work, name="turing-script", daemon=True).start()
            else:
                self._idle -= 1 if self._idle else 0
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            job()
            with self._lock:
                self._idle += 1

    def abandon(self) -> None:
        """A job timed out: its thread may never come back; allow one more thread."""
        with self._lock:
            self._size += 1


_POOL = _DaemonPool()


def _in_daemon_thread(fn: Any, *args: Any) -> asyncio.Future[Any]:
    """Run `fn` on a pooled daemon thread; the future settles on the event loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def job() -> None:
        try:
            value = fn(*args)
        except BaseException as exc:
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, *outcome)

    def on_cancel(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            _POOL.abandon()

    future.add_done_callback(on_cancel)
    _POOL.submit(job)
    return future


def _wants_context(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 2 or "ctx" in params


def _jsonable(step: ScriptStep, value: Any) -> Any:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ScriptError(
            step.name, "bad_output", f"result is not JSON-serialisable: {exc}"
        ) from exc


async def _run_subprocess(step: ScriptStep, data: dict[str, Any], ctx: ScriptContext) -> Any:
    assert step.command is not None
    box = step.sandbox
    env = box.environment({**step.env, "TURING_DRY_RUN": "1" if ctx.dry_run else "0"})
    try:
        argv, warning = box.argv(step.command)
    except NetworkIsolationUnavailable as exc:
        raise ScriptError(
            step.name,
            "crash",
            f"{exc}; the step requires no network (Sandbox.network=True allows it)",
        ) from None
    if warning:
        sandbox.warn_network_once(warning)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=box.directory(ctx.settings.get("root")),
            start_new_session=box.kill_group,
        )
    except OSError as exc:
        raise ScriptError(step.name, "crash", f"cannot start {step.command[0]!r}: {exc}") from exc
    payload = json.dumps(data).encode()
    try:
        out, err = await asyncio.wait_for(proc.communicate(payload), step.timeout)
    except TimeoutError:
        await _stop(proc, box.kill_group)
        what = "its process group" if box.kill_group else "the process"
        raise ScriptError(
            step.name,
            "timeout",
            f"{' '.join(step.command)} killed after {step.timeout:g}s ({what})",
        ) from None
    except asyncio.CancelledError:
        await _stop(proc, box.kill_group)
        raise
    if box.kill_group:  # the script is done: whatever it left running goes with it
        sandbox.kill(proc.pid, group=True)
    if proc.returncode != 0:
        stderr = err.decode(errors="replace").strip()
        code = proc.returncode
        assert code is not None
        if code == 127 and stderr.startswith(CANNOT_START):
            reason = stderr.splitlines()[0].removeprefix(CANNOT_START)
            raise ScriptError(step.name, "crash", f"cannot start {reason}")
        tail = shorten(stderr[-500:], 500) or "(no stderr)"
        status = f"exit code {code}"
        if code < 0:
            with contextlib.suppress(ValueError):
                status += f" ({signal.Signals(-code).name})"
        why = box.explain(code, stderr, isolated=not box.network and not warning)
        raise ScriptError(step.name, "crash", f"{why + ', ' if why else ''}{status}: {tail}")
    text = out.decode(errors="replace").strip()
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise ScriptError(
            step.name, "bad_output", f"stdout is not JSON: {shorten(text or '(empty)', 120)!r}"
        ) from None


async def _stop(proc: asyncio.subprocess.Process, group: bool) -> None:
    """Kill a script that ran out of time or whose step was cancelled, and reap it."""
    sandbox.kill(proc.pid, group)
    await proc.wait()


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Python's parser accepts them unless told not to."""
    raise ValueError(f"{name} is not valid JSON")
