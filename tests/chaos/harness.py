"""The chaos tier's machinery: a private PostgreSQL instance, a project whose LLM workflow
writes to a sink table without a unique constraint and logs every callable-sink call, a fleet
of real `turing worker` / `turing run` processes to kill, freeze and stop, and the ledger
every scenario ends with.

The ledger's checks (all collected, then reported together with their numbers):

* outcomes: every subject has exactly one result row, or no result row and a failed task
  with a reason; nothing is left pending or running after the final run;
* the callable sink's log names no subject twice (a call made by a process that was
  SIGKILLed before it could commit, or one cut off by a database restart, is excused: no
  system can take back a side effect of a transaction that never committed; any other
  second call is reported);
* no task is `running` without a live owner once its lease is over (checked while the fleet
  still runs, and again at the end);
* no claim stall: while work was left and a live, unfrozen process existed, progress never
  paused for longer than one lease plus a margin (database outages excluded);
* no process of the fleet exited by itself, nor with a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acceptance.conftest import Ran, Runner
from turing.sim import SimConfig
from turing.sim.config import ModelLatency
from turing.store.db import connect

# Seconds added to the lease before a pause in progress counts as a stall: the idle poll,
# the heartbeat period and scheduling noise on a busy two-core machine.
STALL_MARGIN = 4.0
# The last line `turing worker` prints before it installs its signal handlers and starts.
BANNER = "stop with Ctrl-C or SIGTERM"
# Lease of the workers (and of `turing run` where it takes --lease) in every scenario.
LEASE = 4.0

FLOWS = '''
"""Chaos workflow: an LLM step on the simulator; the sink logs every call (subject and pid)
to CHAOS_SINK_LOG before it writes, then inserts into sink_calls and results (neither has a
unique constraint, so a result written twice shows as two rows)."""
import itertools, os, signal, time
from pydantic import BaseModel
from turing import LLMStep, RetryPolicy, Sink, Source, Workflow

LOG = os.environ["CHAOS_SINK_LOG"]
FAIL_EVERY = int(os.environ.get("CHAOS_SINK_FAIL_EVERY", "0"))
SINK_SLEEP = float(os.environ.get("CHAOS_SINK_SLEEP", "0"))
FREEZE_FLAG = os.environ.get("CHAOS_FREEZE_FLAG")
_calls = itertools.count(1)


class Item(BaseModel):
    item_id: int
    text: str


class Label(BaseModel):
    item_id: int
    label: str


def log_call(tx, output, task):
    subject = str(task["subject"])
    call = f"{os.getpid()}-{next(_calls)}"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{subject} {os.getpid()} {call} {time.time():.3f}\\n".encode())
    finally:
        os.close(fd)
    if FREEZE_FLAG:
        try:
            os.unlink(FREEZE_FLAG)
        except FileNotFoundError:
            pass
        else:  # frozen inside the completing transaction until the test sends SIGCONT
            os.kill(os.getpid(), signal.SIGSTOP)
    if SINK_SLEEP:
        time.sleep(SINK_SLEEP)
    if FAIL_EVERY and int(subject) % FAIL_EVERY == FAIL_EVERY // 3:
        raise RuntimeError(f"chaos: the sink refuses subject {subject}")
    tx.sql("INSERT INTO sink_calls (call_id, subject) VALUES (:call, :subject)",
           {"call": call, "subject": subject})


chaos_label = Workflow(
    "chaos_label", input=Item, output=Label, subject_key="item_id",
    source=Source(sql="SELECT item_id, text FROM items i WHERE NOT EXISTS (SELECT 1 FROM "
                      "results r WHERE r.subject = CAST(i.item_id AS TEXT)) ORDER BY item_id"),
    sink=Sink(Sink.sql("INSERT INTO results (subject, label) VALUES (:subject, :label)")
              .statements, fn=log_call),
    retry=RetryPolicy(max_attempts=3, backoff_s=0.3, max_delay_s=1.0),
    steps=[LLMStep("label", actor="labeller",
                   prompt="Label this item.\\nitem_id: {{ item_id }}\\ntext: {{ text }}")],
)
'''

DOMAIN = (
    "CREATE TABLE items (item_id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
    # no unique constraint on either: a second write shows as a second row
    "CREATE TABLE results (subject TEXT NOT NULL, label TEXT)",
    "CREATE TABLE sink_calls (call_id TEXT NOT NULL, subject TEXT NOT NULL)",
)


def sim_config() -> SimConfig:
    """Latency (about 0.2-0.4 s a call) and a few faults: 5xx and 429 the managed actor
    retries, shapes repair fixes, a missing field that takes a re-ask."""
    return SimConfig(
        name="chaos-tier",
        seed=10,
        default_latency=ModelLatency(ttft_s=0.15, tokens_per_s=400.0, jitter=0.3),
        models_resident=0,
        retry_after_s=0.3,
        faults={
            "http_500": 0.01,
            "http_429": 0.005,
            "malformed_json": 0.02,
            "fenced_prose": 0.02,
            "json_string": 0.01,
            "missing_field": 0.01,
        },
    )


# --------------------------------------------------------------------- private PostgreSQL
def pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch_dir() -> str | None:
    """/dev/shm when it is a roomy tmpfs (the cluster need not survive a reboot), else the
    default temp dir."""
    shm = Path("/dev/shm")
    try:
        usage = shutil.disk_usage(shm)
    except OSError:
        return None
    return str(shm) if usage.free > 1 << 30 and os.access(shm, os.W_OK) else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) in a temp dir on a free port, owned
    by the `postgres` user when the tests run as root (initdb refuses root)."""

    def __init__(self) -> None:
        initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)")
        self.pg_ctl = pg_ctl
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            raise FileNotFoundError("running as root and runuser is missing")
        self.root = Path(tempfile.mkdtemp(prefix="turing-chaos-pg-", dir=_scratch_dir()))
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = free_port()
        self.options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=32MB"
        )
        self.running = False
        try:
            self._cmd(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
            self.start()
        except BaseException:
            self.close()
            raise

    def _cmd(self, *args: str, timeout: float = 60) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._cmd(self.pg_ctl, "-D", str(self.data), "-l", str(self.logfile), "-o",
                  self.options, "-w", "-t", "60", "start")  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._cmd(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        self._cmd(self.pg_ctl, "-D", str(self.data), "-l", str(self.logfile), "-m", mode,
                  "-o", self.options, "-w", "-t", "60", "restart")  # fmt: skip
        self.running = True

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------ project
def clean_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TURING_")}
    return {**base, "COLUMNS": "200", **extra}


@dataclass
class ChaosProject:
    """A project folder (turing.toml + flows.py) on `url` with `items` subjects."""

    folder: Path
    url: str
    backend: str
    sim_url: str
    items: int
    runner: Runner  # the acceptance tier's `turing` fixture: `python -m turing`, clean env
    flow_env: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.folder / "sink-calls.log"

    @classmethod
    def create(
        cls,
        folder: Path,
        url: str,
        backend: str,
        *,
        sim_url: str,
        items: int,
        runner: Runner,
        **flow_env: str,
    ) -> ChaosProject:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "flows.py").write_text(FLOWS)
        (folder / "turing.toml").write_text(
            f'[project]\ndatabase = "{url}"\nworkflows = ["flows"]\n\n'
            '[actors]\nlabeller = "ollama:qwen2.5:7b"\n'
        )
        project = cls(folder, url, backend, sim_url, items, runner, dict(flow_env))
        db = connect(url)
        try:
            with db.tx() as tx:
                for statement in DOMAIN:
                    tx.sql(statement)
                for i in range(1, items + 1):
                    tx.sql(
                        "INSERT INTO items (item_id, text) VALUES (:i, :t)",
                        {"i": i, "t": " ".join(f"word{j}" for j in range(i % 9 + 1))},
                    )
        finally:
            db.close()
        return project

    def settings(self, **extra: str) -> dict[str, str]:
        """What the project's processes get on top of a clean environment."""
        return {
            "TURING_PROVIDER_OLLAMA_URL": self.sim_url,
            "CHAOS_SINK_LOG": str(self.log),
            **self.flow_env,
            **extra,
        }

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**self.settings(**extra))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "turing", *args]

    def turing(self, *args: str, timeout: float = 120) -> Ran:
        return self.runner(*args, cwd=self.folder, timeout=timeout, env=self.settings())

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        db = connect(self.url)
        try:
            with db.read() as tx:
                return tx.sql(sql, params)
        finally:
            db.close()

    def counts(self) -> dict[str, int]:
        try:
            found = self.rows("SELECT status, COUNT(*) AS n FROM turing_tasks GROUP BY status")
        except Exception as exc:  # not migrated yet: the processes are still starting
            if "turing_tasks" not in str(exc):
                raise
            return {}
        return {str(r["status"]): int(r["n"]) for r in found}

    def finished(self) -> int:
        c = self.counts()
        return c.get("succeeded", 0) + c.get("failed", 0)


@functools.cache
def run_has_lease() -> bool:
    """Whether `turing run` takes --lease yet (issue 10)."""
    done = subprocess.run(
        [sys.executable, "-m", "turing", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    return "--lease" in done.stdout


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


# ------------------------------------------------------------------------------- fleet
def pid_alive(pid: int) -> bool:
    """A live process (not a zombie) with this pid on this machine."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def owner_pid(owner: str | None) -> int | None:
    """The pid in a lease owner `host:pid:nonce`."""
    if not owner:
        return None
    parts = owner.rsplit(":", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return None


@dataclass
class Member:
    proc: subprocess.Popen[bytes]
    kind: str
    started: float
    out: Path
    err: Path
    killed_at: float | None = None
    stopped_by_us: bool = False
    ended: float | None = None
    frozen: list[list[float]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            if self.ended is None:
                self.ended = time.time()
            return False
        return True

    def stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")
        except OSError:
            return ""

    def stdout(self) -> str:
        try:
            return self.out.read_text(errors="replace")
        except OSError:
            return ""


class Fleet:
    """The scenario's processes. Every child is SIGCONTed and SIGKILLed by `close()`."""

    def __init__(self, project: ChaosProject, *, seed: int = 0) -> None:
        self.project = project
        self.members: list[Member] = []
        self.outages: list[tuple[float, float]] = []
        self.rng = random.Random(seed)
        self._n = 0

    def spawn(self, kind: str, *args: str, env: dict[str, str] | None = None) -> Member:
        self._n += 1
        out = self.project.folder / f"{kind}-{self._n}.out"
        err = self.project.folder / f"{kind}-{self._n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                self.project.command(kind, *args),
                cwd=self.project.folder,
                env=self.project.env(**(env or {})),
                stdout=o,
                stderr=e,
            )
        member = Member(proc, kind, time.time(), out, err)
        self.members.append(member)
        return member

    def worker(
        self, *extra: str, concurrency: int = 4, env: dict[str, str] | None = None
    ) -> Member:
        args = ("--json", "-c", str(concurrency), "--lease", f"{LEASE:g}", "--idle", "0.2")
        return self.spawn("worker", *args, "--grace", "3", *extra, env=env)

    def first_completions(self, n: int, timeout: float = 90) -> None:
        """Wait until `n` tasks finished; fail at once (with their stderr) if every
        process of the fleet has exited meanwhile."""

        def check() -> bool:
            if self.project.finished() >= n:
                return True
            if self.members and not self.live():
                tails = [
                    f"{m.kind} pid {m.pid} exit {m.proc.returncode}: "
                    + " | ".join(m.stderr().strip().splitlines()[-3:])
                    for m in self.members
                ]
                raise AssertionError(
                    "every process exited before work got done:\n" + "\n".join(tails)
                )
            return False

        wait_for(check, timeout, f"the first {n} completions")

    def live(self) -> list[Member]:
        return [m for m in self.members if m.killed_at is None and m.alive()]

    def kill(self, member: Member) -> None:
        member.killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            member.proc.send_signal(signal.SIGCONT)
            member.proc.kill()
        member.proc.wait(timeout=30)
        member.ended = member.killed_at

    def kill_random(self) -> Member:
        victim = self.rng.choice(self.live())
        self.kill(victim)
        return victim

    def freeze(self, member: Member) -> None:
        member.proc.send_signal(signal.SIGSTOP)
        member.frozen.append([time.time(), float("inf")])

    def frozen_itself(self, member: Member, timeout: float = 30) -> None:
        """Wait until `member` stopped itself (SIGSTOP from inside its sink) and note it."""
        wait_for(
            lambda: pid_state(member.pid) == "T",
            timeout,
            f"{member.kind} pid {member.pid} to freeze inside its completing transaction",
            every=0.02,
        )
        member.frozen.append([time.time(), float("inf")])

    def thaw(self, member: Member) -> None:
        member.proc.send_signal(signal.SIGCONT)
        if member.frozen and member.frozen[-1][1] == float("inf"):
            member.frozen[-1][1] = time.time()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Mark the database as down for the duration (stall and sink-log accounting)."""
        began = time.time()
        try:
            yield
        finally:
            self.outages.append((began, time.time()))

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every live member (thawed first), wait, SIGKILL what is left."""
        live = self.live()
        # a worker still starting up has no signal handler yet: SIGTERM would just kill it
        wait_for(
            lambda: all(m.kind != "worker" or BANNER in m.stderr() for m in self.live()),
            30,
            "every worker's startup banner",
        )
        time.sleep(0.3)
        live = self.live()
        for m in live:
            m.stopped_by_us = True
            with contextlib.suppress(ProcessLookupError):
                m.proc.send_signal(signal.SIGCONT)
                m.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for m in live:
            try:
                m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(timeout=10)
            m.ended = time.time()

    def wait(self, member: Member, timeout: float) -> int:
        code = member.proc.wait(timeout=timeout)
        member.ended = member.ended or time.time()
        return code

    def close(self) -> None:
        for m in self.members:
            if m.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.send_signal(signal.SIGCONT)
                    m.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.proc.wait(timeout=10)

    def killed_pids(self) -> set[int]:
        return {m.pid for m in self.members if m.killed_at is not None}

    def live_intervals(self) -> list[tuple[float, float]]:
        """When each member was alive and not frozen (start to kill/stop/exit)."""
        now = time.time()
        out: list[tuple[float, float]] = []
        for m in self.members:
            m.alive()
            end = m.killed_at or m.ended or now
            start = m.started
            for f0, f1 in sorted(m.frozen):
                if f0 > start:
                    out.append((start, min(f0, end)))
                start = max(start, f1)
            if end > start:
                out.append((start, end))
        return out


# ------------------------------------------------------------------------------ ledger
def _tracebacks(err: str) -> str:
    """How many tracebacks `err` holds, with the line before the first and its exception."""
    lines = err.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    before = lines[starts[0] - 1].strip() if starts and starts[0] > 0 else ""
    after = next(
        (line.strip() for line in lines[starts[0] + 1 :] if line and not line[0].isspace()), ""
    )
    return f"{len(starts)} traceback(s); the first after {before!r}, ending {after!r}"


def _overlap(a: float, b: float, intervals: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals)


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for x, y in sorted(intervals):
        if out and x <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], y))
        else:
            out.append((x, y))
    return out


def _complement(
    intervals: list[tuple[float, float]], start: float, end: float
) -> list[tuple[float, float]]:
    gaps, cursor = [], start
    for x, y in _merge(intervals):
        if x > cursor:
            gaps.append((cursor, min(x, end)))
        cursor = max(cursor, y)
    if cursor < end:
        gaps.append((cursor, end))
    return [(x, y) for x, y in gaps if y > x]


@dataclass
class Snapshot:
    """The queue seen while the fleet still ran (at the end of the chaos window)."""

    at: float
    counts: dict[str, int]
    orphans: list[dict[str, Any]]


class Ledger:
    """Collects every failed check with its numbers; `verify()` asserts there are none."""

    def __init__(self, project: ChaosProject, fleet: Fleet) -> None:
        self.project = project
        self.fleet = fleet
        self.problems: list[str] = []
        self.notes: list[str] = []
        # problems that tasks stranded under a dead owner's lease cause (scenario d)
        self.stranded: list[str] = []
        self._checked: set[int] = set()  # members whose exit check_fleet has judged

    def problem(self, text: str, *, stranded: bool = False) -> None:
        self.problems.append(text)
        if stranded:
            self.stranded.append(text)

    # ------------------------------------------------------------------ while running
    def snapshot(self) -> Snapshot:
        """Running tasks whose owner is dead (or unknown) and whose lease ran out more than
        STALL_MARGIN ago, while live workers were claiming."""
        now = time.time()
        running = self.project.rows(
            "SELECT id, subject, lease_owner, lease_expires_at FROM turing_tasks "
            "WHERE status = 'running'"
        )
        orphans = []
        for r in running:
            pid = owner_pid(r["lease_owner"])
            expired_for = now - float(r["lease_expires_at"] or 0)
            if (pid is None or not pid_alive(pid)) and expired_for > STALL_MARGIN:
                orphans.append({**r, "expired_for": round(expired_for, 1)})
        snap = Snapshot(now, self.project.counts(), orphans)
        if orphans and self.fleet.live():
            sample = ", ".join(
                f"task {o['id']} (subject {o['subject']}, owner pid {owner_pid(o['lease_owner'])}"
                f", lease over {o['expired_for']}s ago)"
                for o in orphans[:5]
            )
            self.problem(
                f"running without a live owner while {len(self.fleet.live())} worker(s) ran: "
                f"{len(orphans)} task(s), e.g. {sample}",
                stranded=True,
            )
        return snap

    # ------------------------------------------------------------------ fleet health
    def check_fleet(self, *, expect_exit: bool = False) -> None:
        """No member exited on its own before we stopped it (unless `expect_exit`: a
        `turing run` ends by itself), none with a non-zero code or a traceback."""
        for m in self.fleet.members:
            if m.killed_at is not None or m.pid in self._checked:
                continue
            code = m.proc.poll()
            err = m.stderr()
            if code is None:
                continue
            self._checked.add(m.pid)
            tail = " | ".join(err.strip().splitlines()[-4:])
            if not m.stopped_by_us and not expect_exit:
                self.problem(f"{m.kind} pid {m.pid} exited by itself with code {code}: {tail}")
            elif code != 0:
                self.problem(f"{m.kind} pid {m.pid} exited with code {code}: {tail}")
            if "Traceback" in err:
                self.problem(f"{m.kind} pid {m.pid} printed {_tracebacks(err)}")

    # ------------------------------------------------------------------ final run
    def final_run(self) -> Ran:
        """`turing run` (with --lease where it takes one) to finish what the chaos left,
        repeated while tasks wait for a retry time; a failure of it is a problem."""
        args = ["run", "--json", "-c", "8"]
        if run_has_lease():
            args += ["--lease", f"{LEASE:g}"]
        done = self.project.turing(*args, timeout=180)
        for _ in range(3):
            if done.code != 0 or "Traceback" in done.err:
                break
            waiting = self.project.rows(
                "SELECT MAX(not_before) AS t, COUNT(*) AS n FROM turing_tasks "
                "WHERE status = 'pending' AND not_before IS NOT NULL"
            )[0]
            if not waiting["n"]:
                break
            time.sleep(max(0.0, min(5.0, float(waiting["t"]) - time.time())) + 0.2)
            done = self.project.turing(*args, timeout=180)
        if done.code != 0 or "Traceback" in done.err:
            tail = " | ".join(done.err.strip().splitlines()[-4:])
            self.problem(f"final `turing {' '.join(args)}` exited {done.code}: {tail}")
        return done

    # ------------------------------------------------------------------ outcomes
    def check_outcomes(self) -> None:
        p = self.project
        results: dict[str, int] = defaultdict(int)
        for r in p.rows("SELECT subject, COUNT(*) AS n FROM results GROUP BY subject"):
            results[str(r["subject"])] = int(r["n"])
        tasks = {
            str(r["subject"]): r
            for r in p.rows(
                "SELECT subject, status, last_error, lease_owner, lease_expires_at "
                "FROM turing_tasks WHERE workflow = 'chaos_label'"
            )
        }
        twice, missing, failed_no_reason, both, unfinished = [], [], [], [], []
        no_task = []
        for i in range(1, p.items + 1):
            s = str(i)
            n = results.get(s, 0)
            task = tasks.get(s)
            if n > 1:
                twice.append(f"{s} x{n}")
            if task is None:
                no_task.append(s)
                if n == 0:
                    missing.append(f"{s} (no task)")
                continue
            status = task["status"]
            if status in ("pending", "running"):
                unfinished.append(f"{s} {status} (owner pid {owner_pid(task['lease_owner'])})")
            if n == 0 and status != "failed":
                missing.append(f"{s} ({status})")
            if status == "failed" and not (task["last_error"] or "").strip():
                failed_no_reason.append(s)
            if status == "failed" and n > 0:
                both.append(s)
        if twice:
            self.problem(f"{len(twice)} subject(s) have more than one result row: {twice[:10]}")
        if missing:
            self.problem(f"{len(missing)} subject(s) have no result and no failed task: "
                         f"{missing[:10]}", stranded=True)  # fmt: skip
        if unfinished:
            self.problem(f"{len(unfinished)} task(s) still open after the final run: "
                         f"{unfinished[:10]}", stranded=True)  # fmt: skip
        if failed_no_reason:
            self.problem(f"{len(failed_no_reason)} failed task(s) without a reason: "
                         f"{failed_no_reason[:10]}")  # fmt: skip
        if both:
            self.problem(f"{len(both)} failed task(s) have a result row: {both[:10]}")
        extra = sorted(set(results) - {str(i) for i in range(1, p.items + 1)})
        if extra:
            self.problem(f"result rows for unknown subjects: {extra[:10]}")
        statuses = defaultdict(int)
        for t in tasks.values():
            statuses[t["status"]] += 1
        self.notes.append(f"tasks by status: {dict(statuses)}")

    def failed_reasons(self) -> dict[str, str]:
        return {
            str(r["subject"]): str(r["last_error"] or "")
            for r in self.project.rows(
                "SELECT subject, last_error FROM turing_tasks WHERE status = 'failed'"
            )
        }

    # ------------------------------------------------------------------ callable sink log
    def check_sink_log(self) -> None:
        committed = {str(r["call_id"]) for r in self.project.rows("SELECT call_id FROM sink_calls")}
        calls: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
        lines = 0
        if self.project.log.exists():
            for line in self.project.log.read_text().splitlines():
                subject, pid, call, at = line.split()
                calls[subject].append((int(pid), call, float(at)))
                lines += 1
        killed = self.fleet.killed_pids()
        cut = [(a - 1.0, b + 2.0) for a, b in self.fleet.outages]
        unexcused: list[str] = []
        excused = 0
        for subject, made in sorted(calls.items(), key=lambda kv: int(kv[0])):
            if len(made) < 2:
                continue
            done = [c for c in made if c[1] in committed]
            open_calls = [c for c in made if c[1] not in committed]
            bad = [
                c
                for c in open_calls
                if c[0] not in killed and not any(a <= c[2] <= b for a, b in cut)
            ]
            if len(done) > 1 or bad:
                described = ", ".join(
                    f"pid {pid} {'committed' if call in committed else 'rolled back'}"
                    for pid, call, _ in made
                )
                unexcused.append(f"{subject} x{len(made)} ({described})")
            else:
                excused += 1
        failed = set(self.failed_reasons())
        for label, found in (
            ("", [u for u in unexcused if u.split()[0] not in failed]),
            (
                " whose task failed (its sink raised)",
                [u for u in unexcused if u.split()[0] in failed],
            ),
        ):
            if found:
                self.problem(
                    f"the callable sink was called more than once for {len(found)} subject(s)"
                    f"{label} ({lines} calls for {len(calls)} subjects in all): {found[:5]}"
                )
        self.notes.append(
            f"sink log: {lines} call(s), {len(calls)} subject(s), {len(committed)} committed, "
            f"{excused} repeat(s) excused (SIGKILLed caller or database restart)"
        )

    # ------------------------------------------------------------------ orphans at the end
    def check_no_running(self) -> None:
        running = self.project.rows(
            "SELECT id, subject, lease_owner FROM turing_tasks WHERE status = 'running'"
        )
        dead = [r for r in running if not pid_alive(owner_pid(r["lease_owner"]) or -1)]
        if dead:
            sample = [f"task {r['id']} owner pid {owner_pid(r['lease_owner'])}" for r in dead[:5]]
            self.problem(
                f"{len(dead)} task(s) running without a live owner after the final run: {sample}",
                stranded=True,
            )

    # ------------------------------------------------------------------ stalls
    def check_stall(self, start: float, end: float, snapshot: Snapshot) -> float:
        """The longest pause in progress (a run or task finishing) within [start, end],
        not counting database outages nor times without a live, unfrozen process, nor the
        time after the last progress when nothing was left to do. Bound: LEASE +
        STALL_MARGIN. Returns the longest pause."""
        events = sorted(
            {
                float(r["t"])
                for r in self.project.rows(
                    "SELECT finished_at AS t FROM turing_runs WHERE status IN "
                    "('succeeded', 'failed') AND finished_at BETWEEN :a AND :b",
                    {"a": start, "b": end},
                )
            }
            | {
                float(r["t"])
                for r in self.project.rows(
                    "SELECT finished_at AS t FROM turing_tasks WHERE finished_at BETWEEN :a AND :b",
                    {"a": start, "b": end},
                )
            }
        )
        left = snapshot.counts.get("pending", 0) + snapshot.counts.get("running", 0)
        points = [start, *events] + ([end] if left else [])
        excluded = list(self.fleet.outages)
        excluded += _complement(self.fleet.live_intervals(), start, end)
        worst, where = 0.0, (start, start)
        for a, b in itertools.pairwise(points):
            pause = (b - a) - _overlap(a, b, _merge(excluded))
            if pause > worst:
                worst, where = pause, (a, b)
        bound = LEASE + STALL_MARGIN
        rel = (where[0] - start, where[1] - start)
        self.notes.append(
            f"longest pause in progress {worst:.1f}s (t+{rel[0]:.1f}s..t+{rel[1]:.1f}s of the "
            f"window, {len(events)} completions in {end - start:.1f}s); bound {bound:g}s"
        )
        if worst > bound:
            self.problem(
                f"claim stall: no task finished for {worst:.1f}s (from t+{rel[0]:.1f}s to "
                f"t+{rel[1]:.1f}s of the chaos window) while work was left and live, unfrozen "
                f"workers ran; bound is lease {LEASE:g}s + margin {STALL_MARGIN:g}s"
            )
        return worst

    def verify(self) -> None:
        summary = "\n  ".join(self.notes)
        assert not self.problems, (
            f"{len(self.problems)} ledger check(s) failed:\n- "
            + "\n- ".join(self.problems)
            + f"\nnotes:\n  {summary}"
        )
