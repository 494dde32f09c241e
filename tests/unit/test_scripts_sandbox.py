"""The subprocess sandbox of script steps, with real subprocesses: environment, working
directory, process group, CPU/memory/file limits and network; each protection switched off.

Outcomes are asserted, never durations. A protection the machine cannot give (no working
`unshare --net` or `bwrap`) skips its test with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turing import sandbox
from turing.errors import ScriptError
from turing.sandbox import DEFAULT_ALLOW_ENV, Sandbox
from turing.scripts import ScriptContext, run_script
from turing.steps import ScriptStep

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sandbox")

ISOLATION = sandbox.network_isolation()
needs_netns = pytest.mark.skipif(
    ISOLATION is None,
    reason="this machine cannot start a process without network (no working "
    "`unshare --net` with a user namespace, nor `bwrap --unshare-net`)",
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def ctx(root: Path | None) -> ScriptContext:
    return ScriptContext("wf", "s", settings={"root": str(root)} if root else {})


def run(step: ScriptStep, root: Path | None, data: dict[str, Any] | None = None) -> Any:
    return asyncio.run(run_script(step, data or {}, ctx(root)))


def failure(step: ScriptStep, root: Path | None) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        run(step, root)
    return info.value


def alive(pid: int) -> bool:
    """Running, not a zombie (a killed orphan may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def gone(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: wait (bounded) for the process to disappear."""
    for _ in range(200):
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------ environment

PRINT_ENV = python("import json, os; print(json.dumps(dict(os.environ)))")


def test_environment_is_an_allow_list_plus_what_the_step_declares(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "parent-secret")
    monkeypatch.setenv("LC_TIME", "C")
    monkeypatch.setenv("TZ", "UTC")
    step = ScriptStep(
        "s",
        command=PRINT_ENV,
        env={"TOKEN": "t0"},
        sandbox=Sandbox(env={"LANG": "C.UTF-8", "OPENAI_API_KEY": "sk-declared"}),
    )
    env = run(step, tmp_path)
    assert env["OPENAI_API_KEY"] == "sk-declared"  # declared on purpose: passed
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "sk-parent-secret" not in json.dumps(env)
    assert env["TOKEN"] == "t0"
    assert env["LANG"] == "C.UTF-8"
    assert env["LC_TIME"] == "C"  # LC_* pattern
    assert env["TZ"] == "UTC"
    assert env["PATH"] == os.environ["PATH"]
    assert env["TURING_DRY_RUN"] == "0"
    allowed = {"TOKEN", "LANG", "OPENAI_API_KEY", "TURING_DRY_RUN", "LC_CTYPE"}
    # nothing else than the allow-list (plus what Python itself may add, LC_CTYPE)
    for name in env:
        assert name in allowed or Sandbox()._allowed(name), name


def test_parent_secret_is_not_passed_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    env = run(ScriptStep("s", command=PRINT_ENV), tmp_path)
    assert "OPENAI_API_KEY" not in env


def test_allow_list_can_be_extended(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MY_SETTING", "on")
    box = Sandbox(allow_env=(*DEFAULT_ALLOW_ENV, "MY_SETTING"))
    assert run(ScriptStep("s", command=PRINT_ENV, sandbox=box), tmp_path)["MY_SETTING"] == "on"


def test_clean_environment_switched_off_inherits_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    step = ScriptStep("s", command=PRINT_ENV, sandbox=Sandbox(clean_env=False))
    assert run(step, tmp_path)["OPENAI_API_KEY"] == "sk-parent-secret"


# ------------------------------------------------------------------ working directory

PRINT_CWD = python("import json, os; print(json.dumps(os.getcwd()))")


def test_working_directory_is_the_project_folder(tmp_path: Path) -> None:
    assert Path(run(ScriptStep("s", command=PRINT_CWD), tmp_path)) == tmp_path.resolve()


def test_relative_command_is_found_in_the_project_folder(tmp_path: Path) -> None:
    tool = tmp_path / "tool.py"
    tool.write_text(f"#!{sys.executable}\nimport json; print(json.dumps('ran'))\n")
    tool.chmod(0o755)
    assert run(ScriptStep("s", command=["./tool.py"]), tmp_path) == "ran"


def test_working_directory_can_be_chosen(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = ScriptStep("s", command=PRINT_CWD, sandbox=Sandbox(cwd="scripts"))
    absolute = ScriptStep("s", command=PRINT_CWD, sandbox=Sandbox(cwd=str(elsewhere)))
    assert Path(run(relative, tmp_path)) == (tmp_path / "scripts").resolve()
    assert Path(run(absolute, tmp_path)) == elsewhere.resolve()


def test_without_a_project_root_the_callers_directory_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(run(ScriptStep("s", command=PRINT_CWD), None)) == tmp_path.resolve()


# ------------------------------------------------------------------ process group

# The script starts a grandchild that sleeps, records its pid in the project folder, then
# either sleeps itself (timeout, cancellation) or exits at once (leftovers).
SPAWN = (
    "import json, os, subprocess, sys, time\n"
    "open('script.pid', 'w').write(str(os.getpid()))\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
    "    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "open('grandchild.pid.tmp', 'w').write(str(child.pid))\n"
    "os.rename('grandchild.pid.tmp', 'grandchild.pid')\n"
    "if sys.argv[1] == 'sleep':\n"
    "    time.sleep(120)\n"
    "print(json.dumps('done'))\n"
)


def spawner(mode: str, **kw: Any) -> ScriptStep:
    return ScriptStep("s", command=[sys.executable, "-c", SPAWN, mode], **kw)


def grandchild(root: Path) -> int:
    return int((root / "grandchild.pid").read_text())


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    err = failure(spawner("sleep", timeout=5), tmp_path)
    assert err.kind == "timeout"
    assert "killed after 5s (its process group)" in str(err)
    assert gone(grandchild(tmp_path)), "the grandchild outlived its step"


def test_grandchildren_left_behind_are_killed_when_the_script_exits(tmp_path: Path) -> None:
    assert run(spawner("exit"), tmp_path) == "done"
    assert gone(grandchild(tmp_path))


def test_cancellation_kills_the_whole_process_group(tmp_path: Path) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(run_script(spawner("sleep", timeout=120), {}, ctx(tmp_path)))
        for _ in range(600):  # until the grandchild exists (bounded)
            if (tmp_path / "grandchild.pid").exists() or task.done():
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert gone(int((tmp_path / "script.pid").read_text())), "the script outlived its step"
    assert gone(grandchild(tmp_path))


def test_process_group_switched_off_kills_only_the_child(tmp_path: Path) -> None:
    err = failure(spawner("sleep", timeout=5, sandbox=Sandbox(kill_group=False)), tmp_path)
    assert err.kind == "timeout"
    assert "(the process)" in str(err)
    pid = grandchild(tmp_path)
    try:
        assert alive(pid), "without a process group the grandchild survives (as before)"
    finally:
        sandbox.kill(pid, group=False)


# ------------------------------------------------------------------ resource limits

LIMITS = python(
    "import json, resource as r\n"
    "print(json.dumps([r.getrlimit(getattr(r, n)) for n in "
    "('RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_FSIZE')]))"
)


def test_limits_are_on_by_default_and_switch_off(tmp_path: Path) -> None:
    on = run(ScriptStep("s", command=LIMITS), tmp_path)
    assert on == [[30, 31], [1024 * 2**20] * 2, [64 * 2**20] * 2]
    box = Sandbox(cpu_s=None, memory_mb=None, file_mb=None)
    off = run(ScriptStep("s", command=LIMITS, sandbox=box), tmp_path)
    mine = [
        list(resource.getrlimit(getattr(resource, n)))
        for n in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE")
    ]
    assert off == mine


def test_cpu_limit_stops_a_busy_script(tmp_path: Path) -> None:
    step = ScriptStep(
        "s", command=python("while True: pass"), timeout=120, sandbox=Sandbox(cpu_s=1)
    )
    err = failure(step, tmp_path)
    assert err.kind == "crash"
    assert "killed by the CPU limit (1s of CPU time)" in str(err)
    assert "SIGXCPU" in str(err)


WRITE_2MB = python("open('big.bin', 'wb').write(b'x' * (2 * 2**20)); print('{}')")


def test_file_size_limit_stops_a_large_write(tmp_path: Path) -> None:
    err = failure(ScriptStep("s", command=WRITE_2MB, sandbox=Sandbox(file_mb=1)), tmp_path)
    assert err.kind == "crash"
    assert "exceeded the file-size limit (1 MB)" in str(err)
    assert (tmp_path / "big.bin").stat().st_size <= 2**20


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("head") is None, reason="no sh/head")
def test_file_size_limit_stops_a_non_python_writer(tmp_path: Path) -> None:
    """`head` gets SIGXFSZ (Python's ignored disposition is reset before exec)."""
    cmd = ["sh", "-c", "head -c 2097152 /dev/zero > big.bin && echo '{}'"]
    err = failure(ScriptStep("s", command=cmd, sandbox=Sandbox(file_mb=1)), tmp_path)
    assert "exceeded the file-size limit (1 MB)" in str(err)
    assert "exit code 153" in str(err)  # the shell's 128 + SIGXFSZ
    assert (tmp_path / "big.bin").stat().st_size <= 2**20


def test_file_size_limit_switched_off(tmp_path: Path) -> None:
    assert run(ScriptStep("s", command=WRITE_2MB, sandbox=Sandbox(file_mb=None)), tmp_path) == {}
    assert (tmp_path / "big.bin").stat().st_size == 2 * 2**20


ALLOCATE_400MB = python("b = bytearray(400 * 2**20); print(len(b) // 2**20)")


def test_memory_limit_stops_a_large_allocation(tmp_path: Path) -> None:
    err = failure(ScriptStep("s", command=ALLOCATE_400MB, sandbox=Sandbox(memory_mb=200)), tmp_path)
    assert err.kind == "crash"
    assert "exceeded the memory limit (200 MB of address space)" in str(err)
    assert "MemoryError" in str(err)


def test_memory_limit_switched_off(tmp_path: Path) -> None:
    # bytearray's zeroed pages are mapped, not touched: this costs address space, not RAM
    step = ScriptStep("s", command=ALLOCATE_400MB, sandbox=Sandbox(memory_mb=None))
    assert run(step, tmp_path) == 400


# ------------------------------------------------------------------ network


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that greets each client with b'hi'; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"hi")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def connect(port: int, **kw: Any) -> ScriptStep:
    code = (
        "import json, socket, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
        "print(json.dumps(s.recv(2).decode()))\n"
    )
    return ScriptStep("s", command=[sys.executable, "-c", code, str(port)], **kw)


@needs_netns
def test_no_network_by_default(tcp_server: int, tmp_path: Path) -> None:
    err = failure(connect(tcp_server), tmp_path)
    assert err.kind == "crash"
    assert "no network in the sandbox (Sandbox(network=True) allows it)" in str(err)


def test_network_switched_on_reaches_the_server(tcp_server: int, tmp_path: Path) -> None:
    assert run(connect(tcp_server, sandbox=Sandbox(network=True)), tmp_path) == "hi"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_no_network_through_bubblewrap(
    monkeypatch: pytest.MonkeyPatch, tcp_server: int, tmp_path: Path
) -> None:
    prefix = (shutil.which("bwrap") or "bwrap", *sandbox._CANDIDATES[-1][1:])
    probe = subprocess.run([*prefix, "true"], check=False, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"bwrap cannot run here: {probe.stderr.decode(errors='replace')[-200:]}")
    monkeypatch.setattr(sandbox, "network_isolation", lambda: prefix)
    err = failure(connect(tcp_server), tmp_path)
    assert err.kind == "crash"
    assert "no network in the sandbox" in str(err)  # loopback is up there, and empty
    assert Path(run(ScriptStep("s", command=PRINT_CWD), tmp_path)) == tmp_path.resolve()


def test_without_isolation_the_step_runs_with_network_and_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tcp_server: int,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(sandbox, "network_isolation", lambda: None)
    sandbox.warn_network_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="turing.sandbox"):
        assert run(connect(tcp_server), tmp_path) == "hi"
    assert "network isolation is not available" in caplog.text


def test_without_isolation_a_step_that_requires_it_fails(
    monkeypatch: pytest.MonkeyPatch, tcp_server: int, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "network_isolation", lambda: None)
    step = connect(tcp_server, sandbox=Sandbox(require_network_isolation=True))
    err = failure(step, tmp_path)
    assert err.kind == "crash"
    assert "network isolation is not available" in str(err)
    assert "Sandbox.network=True" in str(err)


# ------------------------------------------------------------------ settings


def test_everything_off(monkeypatch: pytest.MonkeyPatch, tcp_server: int, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    box = Sandbox.off()
    assert run(ScriptStep("s", command=PRINT_ENV, sandbox=box), tmp_path)["OPENAI_API_KEY"]
    assert run(connect(tcp_server, sandbox=box), tmp_path) == "hi"
    off = run(ScriptStep("s", command=LIMITS, sandbox=box), tmp_path)
    assert off[0] == list(resource.getrlimit(resource.RLIMIT_CPU))


def test_missing_executable_is_reported_from_inside_the_sandbox(tmp_path: Path) -> None:
    err = failure(ScriptStep("s", command=["no-such-turing-tool"]), tmp_path)
    assert err.kind == "crash"
    assert "cannot start 'no-such-turing-tool'" in str(err)


@pytest.mark.parametrize("name", ["cpu_s", "memory_mb", "file_mb"])
@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_limits_must_be_positive_whole_numbers(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        Sandbox(**{name: value})


def test_fingerprint_changes_only_when_the_sandbox_does() -> None:
    plain = ScriptStep("s", command=["tool"])
    assert "sandbox" not in plain.settings()
    assert "sandbox" not in ScriptStep("s", run=len, sandbox=Sandbox(cpu_s=5)).settings()
    changed = ScriptStep("s", command=["tool"], sandbox=Sandbox(network=True, env={"K": "v"}))
    assert changed.settings()["sandbox"]["network"] is True
    assert changed.settings()["sandbox"]["env"] == ["K"]  # names, not values
