"""Script steps: Python callables (sync, async, with context) and JSON-over-stdio subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from turing.errors import ScriptError
from turing.scripts import ScriptContext, run_script
from turing.steps import ScriptStep

CTX = ScriptContext("talent", "prep", dry_run=True, settings={"region": "eu"})


def run(step: ScriptStep, data: dict[str, Any], ctx: ScriptContext = CTX) -> Any:
    return asyncio.run(run_script(step, data, ctx))


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# ------------------------------------------------------------------ callables


def double(data: dict[str, Any]) -> dict[str, Any]:
    return {"n": data["n"] * 2}


def with_context(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    return {
        "n": data["n"],
        "workflow": ctx.workflow,
        "step": ctx.step,
        "dry_run": ctx.dry_run,
        "region": ctx.settings["region"],
    }


async def async_double(data: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"n": data["n"] * 2}


async def async_with_context(data: dict[str, Any], ctx: ScriptContext) -> dict[str, Any]:
    return {"n": data["n"], "step": ctx.step}


class Out(BaseModel):
    n: int
    when: datetime


def returns_model(data: dict[str, Any]) -> Out:
    return Out(n=data["n"], when=datetime(2024, 1, 2, 3, 4, 5))


CONTEXT_OUT = {"n": 3, "workflow": "talent", "step": "prep", "dry_run": True, "region": "eu"}


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        pytest.param(double, {"n": 6}, id="one-arg"),
        pytest.param(with_context, CONTEXT_OUT, id="two-args-with-context"),
        pytest.param(async_double, {"n": 6}, id="async-one-arg"),
        pytest.param(async_with_context, {"n": 3, "step": "prep"}, id="async-with-context"),
        pytest.param(lambda d: [d["n"], None, "x"], [3, None, "x"], id="lambda-list"),
        pytest.param(lambda d: (d["n"], 1), [3, 1], id="tuple-becomes-list"),
        pytest.param(
            returns_model, {"n": 3, "when": "2024-01-02T03:04:05"}, id="pydantic-model-dumped"
        ),
    ],
)
def test_callable_results(fn: Callable[..., Any], expected: Any) -> None:
    assert run(ScriptStep("prep", run=fn), {"n": 3}) == expected


def test_callable_result_is_a_copy() -> None:
    shared: dict[str, Any] = {"items": [1]}
    result = run(ScriptStep("prep", run=lambda d: shared), {})
    assert result == shared
    assert result is not shared


def boom(data: dict[str, Any]) -> Any:
    raise ValueError("bad posting")


async def async_boom(data: dict[str, Any]) -> Any:
    raise KeyError("missing")


@pytest.mark.parametrize(
    ("fn", "kind", "fragment"),
    [
        pytest.param(boom, "crash", "ValueError: bad posting", id="raises"),
        pytest.param(async_boom, "crash", "KeyError: 'missing'", id="async-raises"),
        pytest.param(lambda d: {1, 2}, "bad_output", "not JSON-serialisable", id="set"),
        pytest.param(lambda d: {"o": object()}, "bad_output", "not JSON-serialisable", id="obj"),
        pytest.param(
            lambda d: {"when": datetime(2024, 1, 1)}, "bad_output", "datetime", id="datetime"
        ),
        pytest.param(lambda d: {"x": b"raw"}, "bad_output", "bytes", id="bytes"),
        pytest.param(lambda d: {"x": float("nan")}, "bad_output", "not JSON", id="nan"),
        pytest.param(lambda d: [float("inf")], "bad_output", "not JSON", id="infinity"),
    ],
)
def test_callable_failures(fn: Callable[..., Any], kind: str, fragment: str) -> None:
    with pytest.raises(ScriptError) as info:
        run(ScriptStep("prep", run=fn), {"n": 1})
    assert info.value.kind == kind
    assert info.value.step == "prep"
    assert str(info.value).startswith(f"script step 'prep' {kind}: ")
    assert fragment in str(info.value)


def test_async_callable_timeout() -> None:
    async def slow(data: dict[str, Any]) -> Any:
        await asyncio.sleep(10)

    with pytest.raises(ScriptError) as info:  # after 0.1 s, not the 10 s sleep
        run(ScriptStep("prep", run=slow, timeout=0.1), {})
    assert info.value.kind == "timeout"
    assert "no result after 0.1s" in str(info.value)


# ------------------------------------------------------------------ subprocesses

ECHO_DOUBLE = python(
    "import json, sys; d = json.load(sys.stdin); print(json.dumps({'n': d['n'] * 2, 'seen': d}))"
)


def test_subprocess_reads_stdin_json_and_writes_stdout_json() -> None:
    data = {"n": 21, "text": "Grüße"}
    assert run(ScriptStep("prep", command=ECHO_DOUBLE), data) == {"n": 42, "seen": data}


def test_subprocess_script_file(tmp_path: Path) -> None:
    script = tmp_path / "count.py"
    script.write_text(
        "import json, sys\n"
        "data = json.load(sys.stdin)\n"
        "sys.stderr.write('diagnostics are ignored\\n')\n"
        "print(json.dumps({'words': len(data['text'].split())}))\n"
    )
    step = ScriptStep("count", command=[sys.executable, str(script)])
    assert run(step, {"text": "one two three"}) == {"words": 3}


def test_subprocess_sees_env_and_dry_run_flag() -> None:
    code = (
        "import json, os; print(json.dumps("
        "[os.environ['TURING_DRY_RUN'], os.environ['TOKEN'], 'PATH' in os.environ]))"
    )
    step = ScriptStep("env", command=python(code), env={"TOKEN": "t0"})
    assert run(step, {}) == ["1", "t0", True]
    assert run(step, {}, ScriptContext("talent", "env", dry_run=False)) == ["0", "t0", True]


@pytest.mark.parametrize(
    ("code", "kind", "fragments"),
    [
        pytest.param(
            "import sys; sys.stderr.write('warming up\\nfatal: no such posting\\n'); sys.exit(3)",
            "crash",
            ["exit code 3", "fatal: no such posting"],
            id="non-zero-exit",
        ),
        pytest.param(
            "raise RuntimeError('kaputt')",
            "crash",
            ["exit code 1", "RuntimeError: kaputt"],
            id="uncaught-exception",
        ),
        pytest.param("import sys; sys.exit(2)", "crash", ["(no stderr)"], id="silent-exit"),
        pytest.param("print('hello, not json')", "bad_output", ["hello, not json"], id="text"),
        pytest.param("pass", "bad_output", ["(empty)"], id="empty-stdout"),
        pytest.param("print('{\"x\": NaN}')", "bad_output", ["NaN"], id="nan-is-not-json"),
        pytest.param(
            "print('{\"a\": 1,}')", "bad_output", ["stdout is not JSON"], id="broken-json"
        ),
    ],
)
def test_subprocess_failures(code: str, kind: str, fragments: list[str]) -> None:
    with pytest.raises(ScriptError) as info:
        run(ScriptStep("prep", command=python(code)), {})
    assert info.value.kind == kind
    assert str(info.value).startswith(f"script step 'prep' {kind}: ")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_subprocess_crash_keeps_the_tail_of_stderr() -> None:
    code = "import sys; sys.stderr.write('EARLY' + 'x' * 3000 + 'THE REAL ERROR'); sys.exit(1)"
    with pytest.raises(ScriptError) as info:
        run(ScriptStep("prep", command=python(code)), {})
    message = str(info.value)
    assert message.endswith("THE REAL ERROR")
    assert "EARLY" not in message
    assert len(message) < 600


def test_subprocess_hang_is_killed_after_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[asyncio.subprocess.Process] = []
    create = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await create(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    with pytest.raises(ScriptError) as info:
        run(ScriptStep("prep", command=python("import time; time.sleep(60)"), timeout=0.5), {})
    assert info.value.kind == "timeout"
    assert "killed after 0.5s" in str(info.value)
    [proc] = started
    assert proc.returncode == -signal.SIGKILL  # killed and reaped, not left running
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


def test_missing_executable_is_a_crash() -> None:
    step = ScriptStep("prep", command=["/nonexistent/turing-test-binary"])
    with pytest.raises(ScriptError) as info:
        run(step, {})
    assert info.value.kind == "crash"
    assert "cannot start '/nonexistent/turing-test-binary'" in str(info.value)


def test_optional_second_parameter_does_not_receive_the_context() -> None:
    import asyncio

    from turing.scripts import ScriptContext, run_script
    from turing.steps import ScriptStep

    def fn(data: dict[str, object], extra: object = None) -> dict[str, object]:
        return {"extra": extra is None}

    step = ScriptStep("s", run=fn)
    out = asyncio.run(run_script(step, {}, ScriptContext("wf", "s")))
    assert out == {"extra": True}
