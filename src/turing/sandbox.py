"""The subprocess sandbox for script steps: what a `command` step may see and use.

A subprocess script step runs with

* an explicit environment: the variables named in `allow_env` (taken from the caller's
  environment), the ones the step declares, and `TURING_DRY_RUN`; never the caller's API keys;
* the project folder as working directory;
* its own session and process group, killed as a whole on timeout, on cancellation and when
  the script has exited (so no grandchild outlives its step);
* CPU-time, address-space and file-size limits (`setrlimit`), set by a tiny Python wrapper
  that then `exec`s the command: `preexec_fn` is not safe in a process that runs threads
  (Turing runs script callables and providers on threads) and disables the fast spawn path,
  and `prlimit` is Linux-only;
* no network where the machine allows it: a fresh network namespace (only a loopback
  interface, down) through `unshare --net` (util-linux, with an unprivileged user namespace
  when needed) or `bwrap --unshare-net` (bubblewrap).

Each protection is on by default and switchable per step. This is containment against
mistakes and accidents (a leaked key, a runaway loop, a log that fills the disk, a forgotten
child), not a security boundary: the script still runs as the caller's user, sees the whole
file system and can write wherever that user may. A Python callable step runs in Turing's
own process and is not sandboxed at all.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Variables a subprocess step gets from the caller's environment by default. Deliberately
#: small: what locates programs and files and sets language and time zone. Not PYTHONPATH
#: (an interpreter named by path, such as `sys.executable`, finds its own packages; name it
#: in `allow_env` if a step needs it) and nothing that carries credentials.
DEFAULT_ALLOW_ENV: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
)

#: What the wrapper prints, with exit status 127, when the command cannot be started.
CANNOT_START = "turing-sandbox: cannot start "

# Runs as `python -I -S -c WRAPPER cpu_s memory_bytes file_bytes -- command...` ("-" = no
# limit): sets the limits, puts back the default dispositions of the signals Python ignores
# (an ignored signal stays ignored across exec), then becomes the command.
_WRAPPER = (
    f"CANNOT_START = {CANNOT_START!r}\n"
    + """\
import os, resource, signal, sys
a = sys.argv[1:]
def limit(which, value, extra=0):
    if value == "-":
        return
    soft, hard = int(value), int(value) + extra
    _, cur = resource.getrlimit(which)
    if cur != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur), min(hard, cur)
    resource.setrlimit(which, (soft, hard))
limit(resource.RLIMIT_CPU, a[0], 1)
limit(resource.RLIMIT_AS, a[1])
limit(resource.RLIMIT_FSIZE, a[2])
for name in ("SIGPIPE", "SIGXFSZ", "SIGXCPU"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
cmd = a[4:]
try:
    os.execvp(cmd[0], cmd)
except OSError as exc:
    sys.stderr.write("%s%r: %s\\n" % (CANNOT_START, cmd[0], exc))
    os._exit(127)
"""
)


@dataclass(frozen=True)
class Sandbox:
    """How a subprocess script step is confined. Every protection is on by default.

    * `env`: variables the step declares (added to the allow-listed ones).
    * `allow_env`: names taken from the caller's environment; a trailing `*` matches a
      prefix (`LC_*`). Extend with `DEFAULT_ALLOW_ENV + ("PYTHONPATH",)`.
    * `clean_env=False`: inherit the caller's whole environment instead (API keys included).
    * `cwd`: working directory; `None` is the project folder, a relative path is taken from
      it (without a project root in the settings: the caller's working directory).
    * `kill_group=False`: no session of its own; a timeout kills only the direct child.
    * `cpu_s`, `memory_mb`, `file_mb`: CPU seconds, address space (virtual memory, MB) and
      largest file written (MB); `None` for no limit. Runtimes that reserve much virtual
      memory up front (JVM, Go, Node) need a larger `memory_mb` or `None`.
    * `network=True`: let the step use the network (including 127.0.0.1).
    * `require_network_isolation=True`: when the machine cannot cut the network off (no
      working `unshare --net` or `bwrap`), fail the step instead of running it with network
      and logging a warning.
    """

    env: dict[str, str] = field(default_factory=dict)
    allow_env: tuple[str, ...] = DEFAULT_ALLOW_ENV
    clean_env: bool = True
    cwd: str | None = None
    kill_group: bool = True
    cpu_s: int | None = 30
    memory_mb: int | None = 1024
    file_mb: int | None = 64
    network: bool = False
    require_network_isolation: bool = False

    @classmethod
    def off(cls) -> Sandbox:
        """No protection: the caller's environment, no limits, network, no process group.

        The working directory stays the project folder (pass `cwd` to choose another)."""
        return cls(
            clean_env=False,
            kill_group=False,
            cpu_s=None,
            memory_mb=None,
            file_mb=None,
            network=True,
        )

    def __post_init__(self) -> None:
        for name in ("cpu_s", "memory_mb", "file_mb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"Sandbox.{name} must be a positive whole number or None")
        object.__setattr__(self, "allow_env", tuple(self.allow_env))

    def settings(self) -> dict[str, Any]:
        """For the workflow fingerprint: the values, not the declared variables' contents."""
        out = asdict(self)
        out["env"] = sorted(self.env)
        out["allow_env"] = list(self.allow_env)
        return out

    # -------------------------------------------------------------- applied to one run

    def environment(self, declared: Mapping[str, str] = {}) -> dict[str, str]:
        """The child's environment: allow-listed caller variables, then declared ones."""
        if self.clean_env:
            base = {k: v for k, v in os.environ.items() if self._allowed(k)}
        else:
            base = dict(os.environ)
        return {**base, **self.env, **declared}

    def _allowed(self, name: str) -> bool:
        return any(
            fnmatch.fnmatchcase(name, pattern) if "*" in pattern else name == pattern
            for pattern in self.allow_env
        )

    def directory(self, root: str | os.PathLike[str] | None) -> str:
        base = Path(root) if root else Path.cwd()
        return str(base / self.cwd) if self.cwd else str(base)

    def argv(self, command: Sequence[str]) -> tuple[list[str], str | None]:
        """The command line to start, and why the network is still on when it should be off.

        Raises `NetworkIsolationUnavailable` when isolation is required and impossible.
        """
        argv = list(command)
        limits = (self.cpu_s, self.memory_mb, self.file_mb)
        prefix: list[str] = []
        warning = None
        if not self.network:
            found = network_isolation()
            if found is not None:
                prefix = list(found)
            elif self.require_network_isolation:
                raise NetworkIsolationUnavailable(UNAVAILABLE)
            else:
                warning = UNAVAILABLE
        if any(v is not None for v in limits) or prefix:
            # the wrapper also reports a command that cannot be started (status 127)
            values = [
                str(self.cpu_s) if self.cpu_s else "-",
                str(self.memory_mb * 2**20) if self.memory_mb else "-",
                str(self.file_mb * 2**20) if self.file_mb else "-",
            ]
            argv = [sys.executable, "-I", "-S", "-c", _WRAPPER, *values, "--", *argv]
        return prefix + argv, warning

    def explain(self, returncode: int, stderr: str, isolated: bool = False) -> str | None:
        """Which limit most likely ended a process that failed, or None.

        `isolated`: the process ran without network (a failed connection is then ours)."""
        # a negative status is the signal that ended the process; 128 + n is how a shell
        # reports that one of its commands was ended by signal n
        sig = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
        if self.cpu_s and (
            sig == getattr(signal, "SIGXCPU", None) or "CPU time limit exceeded" in stderr
        ):
            return f"killed by the CPU limit ({self.cpu_s}s of CPU time)"
        if self.file_mb and (
            sig == getattr(signal, "SIGXFSZ", None)
            or any(marker in stderr for marker in _FILE_MARKERS)
        ):
            return f"exceeded the file-size limit ({self.file_mb} MB)"
        if self.memory_mb and any(marker in stderr for marker in _MEMORY_MARKERS):
            return f"exceeded the memory limit ({self.memory_mb} MB of address space)"
        if isolated and any(marker in stderr for marker in _NETWORK_MARKERS):
            return "no network in the sandbox (Sandbox(network=True) allows it)"
        if sig == signal.SIGKILL and self.cpu_s:
            return (
                f"killed by SIGKILL: the CPU limit's hard stop ({self.cpu_s + 1}s of CPU"
                " time) or the system's out-of-memory killer"
            )
        return None


_FILE_MARKERS = ("File too large", "File size limit exceeded")  # Python (EFBIG); a shell
_NETWORK_MARKERS = (
    "Network is unreachable",
    "name resolution",
    "Could not resolve host",
    "Connection refused",
)
_MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory")

UNAVAILABLE = (
    "network isolation is not available on this machine (no working `unshare --net` or"
    " `bwrap --unshare-net`): the step runs with network"
)


class NetworkIsolationUnavailable(RuntimeError):
    """The step requires no network and the machine cannot provide it."""


_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--map-current-user", "--net", "--"),
    ("unshare", "--map-root-user", "--net", "--"),
    ("unshare", "--net", "--"),
    ("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--"),
)


@functools.cache
def network_isolation() -> tuple[str, ...] | None:
    """The first command prefix that starts a program without network here, or None.

    Probed once per process: under each candidate, a program must fail to reach a TCP
    server listening on 127.0.0.1 in this process (in a fresh network namespace the
    loopback interface is down, or up and empty under bwrap).
    """
    if not sys.platform.startswith("linux"):
        return None
    probe = (
        "import socket, sys\n"
        "try:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)\n"
        "except OSError:\n    sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = str(server.getsockname()[1])
        for candidate in _CANDIDATES:
            exe = shutil.which(candidate[0])
            if exe is None:
                continue
            prefix = (exe, *candidate[1:])
            try:
                done = subprocess.run(
                    [*prefix, sys.executable, "-I", "-S", "-c", probe, port],
                    check=False,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=10,
                    env={"PATH": os.environ.get("PATH", os.defpath)},
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return prefix
            log.debug("network isolation: %s does not work: %r", candidate, done.stderr[-200:])
    return None


@functools.cache
def warn_network_once(reason: str) -> None:
    log.warning("script steps: %s", reason)


def kill(pid: int, group: bool) -> None:
    """SIGKILL a process, or its whole process group; gone already is fine."""
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
