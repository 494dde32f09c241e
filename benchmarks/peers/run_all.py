"""Benchmark 1 against peers: Turing's overhead benchmark and the same work in Huey,
Procrastinate and DBOS, in one run, one table per backend and variant.

Two variants (both by default, `--variant` picks one): `noop`, a task that does nothing, and
`llm`, a one-step LLM task: an in-process fake model (the same function on every side), its
JSON answer validated (every other one in a code fence), a result row and a history/log row
written into the system's own database (Turing: its history with the recorded call; the peers:
a `model_calls` table, in the same transaction as the result row; see `_peer.py`).

Turing runs `benchmarks/overhead.py` with the project's venv; each peer runs its script under
`benchmarks/peers/` with the peers' venv (`.venv-peers`, from benchmarks/requirements-peers.txt),
one after the other, each in its own process, so that no two compete for the two cores. Every
child has a time limit: past it, it gets SIGINT (so it cleans up its temp files and databases)
and, 30 s later, SIGKILL. Only the standard library is used here.
Run: `python benchmarks/peers/run_all.py [N] [--backend sqlite|postgres]` (what `make bench-peers`
does).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# (script, backend): every peer on the backend the issue names for it.
PEERS = [
    ("huey_bench.py", "sqlite"),
    ("dbos_bench.py", "sqlite"),
    ("procrastinate_bench.py", "postgres"),
]
# Issue 5, benchmark 1: Turing's floors for no-op tasks, in tasks/s.
TARGETS = {"sqlite": 2_000, "postgres": 1_500}
# Issue 10: for LLM tasks, Turing's rate at least this many times the peer's.
LLM_RATIOS = {("sqlite", "huey"): 2.0, ("postgres", "procrastinate"): 4.0}
VARIANTS = ["noop", "llm"]

TURING_LINE = re.compile(
    r"^\s*(sqlite|postgres)\s+(noop|llm)\s*:\s*([\d,]+) tasks/s\s*\(([\d.]+) s"
)
PEER_LINE = re.compile(r"^(\w+)\((\w+)[^)]*\):\s*([\d,]+) tasks/s \([\d,]+ tasks in ([\d.]+) s")


@dataclass
class Result:
    system: str
    backend: str
    variant: str
    rate: float | None  # None: the run failed
    secs: float | None
    detail: str


def run(cmd: list[str], limit: float) -> tuple[int, str, str]:
    """Run a child to the end or to `limit` seconds; SIGINT, then SIGKILL, past it."""
    print(f"$ {' '.join(cmd)}", flush=True)
    child = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
        err += f"\n(stopped after the {limit:.0f} s limit)"
        return -1, out, err
    return child.returncode, out, err


def show(out: str, err: str, code: int) -> None:
    for line in out.splitlines():
        print(f"    {line}")
    if code != 0:
        why = "time limit" if code == -1 else f"exit {code}"
        print(f"    FAILED ({why}); last lines of stderr:")
        for line in err.strip().splitlines()[-15:]:
            print(f"    ! {line}")
    sys.stdout.flush()


def run_turing(
    python: str, n: int, backends: list[str], variants: list[str], limit: float
) -> list[Result]:
    cmd = [python, "benchmarks/overhead.py", str(n), *backends, *variants]
    code, out, err = run(cmd, limit)
    show(out, err, code)
    found = {}
    for line in out.splitlines():
        if match := TURING_LINE.match(line):
            found[match[1], match[2]] = (float(match[3].replace(",", "")), float(match[4]))
    detail = {"noop": "validation + history + sink", "llm": "+ recorded model call, repair"}
    return [
        Result("turing", b, v, *found.get((b, v), (None, None)), detail[v])
        for b in backends
        for v in variants
    ]


def run_peer(  # noqa: PLR0917
    python: str, script: str, backend: str, variant: str, n: int, limit: float
) -> Result:
    code, out, err = run([python, str(HERE / script), str(n), "--variant", variant], limit)
    show(out, err, code)
    name = script.removesuffix("_bench.py")
    for line in out.splitlines():
        if code == 0 and (match := PEER_LINE.match(line)):
            detail = line.split("; ", 1)[1].rstrip(")") if "; " in line else ""
            return Result(
                match[1],
                match[2],
                variant,
                float(match[3].replace(",", "")),
                float(match[4]),
                detail,
            )
    return Result(name, backend, variant, None, None, "failed")


def margin(turing: float | None, peer: float | None) -> str:
    if turing is None or peer is None:
        return "n/a"
    ratio = turing / peer
    return f"{ratio:.2f}x ({(ratio - 1) * 100:+.0f}%)"


def table(backend: str, variant: str, n: int, results: list[Result]) -> bool:
    """Print one backend's table for a variant; True if Turing met its targets there."""
    rows = [r for r in results if r.backend == backend and r.variant == variant]
    turing = next((r.rate for r in rows if r.system == "turing"), None)
    what = "no-op tasks" if variant == "noop" else "one-step LLM tasks (in-process fake model)"
    print(f"\n{backend}, {variant}: {n:,} {what}, one process, 32 threads/slots")
    print(f"  {'system':<15}{'tasks/s':>9}{'seconds':>9}   {'Turing margin':<15}  notes")
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate is not None else "failed"
        secs = f"{r.secs:.1f}" if r.secs is not None else "-"
        gap = "" if r.system == "turing" else margin(turing, r.rate)
        print(f"  {r.system:<15}{rate:>9}{secs:>9}   {gap:<15}  {r.detail}")
    peers = [r.rate for r in rows if r.system != "turing"]
    ahead = turing is not None and all(p is not None and turing > p for p in peers)
    if variant == "llm":
        verdicts = [ahead]
        for r in rows:
            if (ratio := LLM_RATIOS.get((backend, r.system))) is None:
                continue
            met = turing is not None and r.rate is not None and turing >= ratio * r.rate
            verdicts.append(met)
            print(f"  target: at least {ratio:g}x {r.system} ({'met' if met else 'NOT met'})")
        print(f"  ahead of every peer on {backend}: {'yes' if ahead else 'NO'}")
        return all(verdicts)
    floor = TARGETS[backend]
    met_floor = turing is not None and turing >= floor
    print(
        f"  target: at least {floor:,} tasks/s ({'met' if met_floor else 'NOT met'}) and ahead "
        f"of every peer on {backend} ({'yes' if ahead else 'NO'})"
    )
    return met_floor and ahead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="tasks per run")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--time-limit", type=float, help="seconds per child (default: N/20, >=600)")
    parser.add_argument("--turing-python", default=str(ROOT / ".venv/bin/python"))
    parser.add_argument("--peers-python", default=str(ROOT / ".venv-peers/bin/python"))
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgres"]
    variants = args.variant or VARIANTS
    for python, how in [(args.turing_python, "make venv"), (args.peers_python, "make bench-peers")]:
        if not Path(python).exists():
            raise SystemExit(f"{python} is missing: create it with `{how}`")
    # Per child; the slowest peer here runs at about 150-250 tasks/s.
    limit = args.time_limit or max(600.0, args.n / 20)

    runs = len(backends) * len(variants)
    results = run_turing(args.turing_python, args.n, backends, variants, limit * runs)
    for variant in variants:
        for script, backend in PEERS:
            if backend in backends:
                results.append(run_peer(args.peers_python, script, backend, variant, args.n, limit))

    print("\nTimed: Turing from discovery to the last sink row and history record; each peer")
    print("from its first enqueue to its last task done (enqueue included, set-up excluded).")
    verdicts = [table(b, v, args.n, results) for v in variants for b in backends]
    failed = [r.system for r in results if r.rate is None]
    if failed:
        raise SystemExit(f"\nfailed: {', '.join(failed)}")
    print(f"\nbenchmark 1 targets: {'all met' if all(verdicts) else 'NOT all met'}")


if __name__ == "__main__":
    main()
