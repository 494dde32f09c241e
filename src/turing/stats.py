"""History numbers (`turing stats`), timeout advice (`--timeouts`) and pruning (`turing prune`).

The window holds the runs whose `finished_at` lies in [since, until]; calls and repairs
count with their run. Definitions:

- throughput: task runs that finished (succeeded or failed; not discarded, not
  `turing exec` runs) per minute of the window, and per minute while active (first start
  to last finish in the window).
- latency: per model call (one attempt, re-asks are their own calls) from
  `turing_calls.latency_ms`, answers from the response cache left out (they take no time
  and would hide the model's). Per step (workflow and step name) and per actor (the
  identity the call was made with, e.g. `ollama:qwen2.5:7b`).
- run duration: `turing_runs.duration_ms` per workflow, succeeded and failed runs.
- percentiles are nearest-rank over the fetched values, computed here so that both
  dialects agree: the p-th of n sorted values is the one at rank ceil(p/100 * n).

Timeout advice: per LLM step, the p99 of its uncached calls that needed no provider retry
(a retried call's latency includes backoff, while a step timeout bounds each try), then
max(2 x p99, p99 + 5 s) rounded up (whole seconds to 20 s, then 5 s to 100 s, 10 s to
200 s, 30 s to 600 s, then minutes). Fewer than `MIN_SAMPLES` samples are flagged: a p99
of a few calls is little more than their maximum.

Pruning deletes runs (with their calls and repairs) that finished before the cutoff and
schedule ticks before it (each schedule keeps its newest, so it does not fire again).
Tasks are kept unless asked (`tasks=True`): a finished task is what stops discovery from
enqueueing its subject again, so deleting it re-runs the subject if the source still
returns it. Pending and running tasks are never deleted.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from turing.registry import Registry
from turing.repair import parse_json
from turing.steps import LLMStep, effective_timeout
from turing.store.stats import QualityCall, StatsStore
from turing.store.store import Store

MIN_SAMPLES = 100

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `24h`, `7d`, `2w` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration (like 90s, 15m, 24h, 7d, 2w)")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_point(text: str, now: float | None = None) -> float:
    """A point in time: a duration back from now (`24h`) or an ISO date or date-time
    (`2024-05-01`, `2024-05-01T12:00`, naive means UTC) -> epoch seconds."""
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (24h, 7d) nor an ISO date (2024-05-01T12:00)"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (at least one)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True)
class Percentiles:
    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Percentiles | None:
        ordered = sorted(float(v) for v in values)
        if not ordered:
            return None
        return cls(
            len(ordered),
            percentile(ordered, 50),
            percentile(ordered, 95),
            percentile(ordered, 99),
            ordered[-1],
            sum(ordered) / len(ordered),
        )

    def as_dict(self, unit: str = "ms") -> dict[str, Any]:
        return {
            "n": self.n,
            f"p50_{unit}": round(self.p50, 3),
            f"p95_{unit}": round(self.p95, 3),
            f"p99_{unit}": round(self.p99, 3),
            f"max_{unit}": round(self.max, 3),
            f"mean_{unit}": round(self.mean, 3),
        }


@dataclass
class WorkflowStats:
    runs: int = 0
    tasks: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    duration: Percentiles | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "tasks": self.tasks,
            "by_status": dict(self.by_status),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": round(self.cost, 8),
            "duration": self.duration.as_dict() if self.duration else None,
        }


@dataclass
class QualityFigures:
    """How good the answers of one (workflow, actor, fingerprint) were. An "answer" is one
    step of one run: its first call and any re-asks."""

    answers: int = 0
    first_valid: int = 0  # answers whose first call broke no contract rule and no error
    reasked: int = 0
    runs: int = 0
    repaired_runs: int = 0
    calls: int = 0
    check_failures: Counter[str] = field(default_factory=Counter)  # calls, by check name
    thrown_calls: int = 0  # calls whose answer was not used (re-asked, or the run failed)
    thrown_tokens: int = 0
    thrown_cost: float = 0.0
    grades: Counter[float] = field(default_factory=Counter)  # scores a grader gave (rounded)

    def rate(self, n: int, of: int) -> float:
        return n / of if of else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "first_answer_valid_rate": round(self.rate(self.first_valid, self.answers), 4),
            "reask_rate": round(self.rate(self.reasked, self.answers), 4),
            "repair_rate": round(self.rate(self.repaired_runs, self.runs), 4),
            "calls": self.calls,
            "check_failure_rate": {
                k: round(self.rate(v, self.calls), 4)
                for k, v in sorted(self.check_failures.items())
            },
            "thrown_away": {
                "calls": self.thrown_calls,
                "tokens": self.thrown_tokens,
                "cost": round(self.thrown_cost, 8),
            },
            "grades": {f"{k:g}": v for k, v in sorted(self.grades.items())},
        }


def quality_of(calls: Iterable[QualityCall]) -> dict[tuple[str, str, str], QualityFigures]:
    """Quality figures per (workflow, actor, fingerprint) from the window's model calls."""
    answers: dict[tuple[int, str], list[QualityCall]] = defaultdict(list)
    gates: list[QualityCall] = []  # grader and consistency calls (step "<step>:<gate>")
    for c in calls:
        (gates if ":" in c.step else answers[(c.run_id, c.step)]).append(c)
    out: dict[tuple[str, str, str], QualityFigures] = {}
    seen_runs: set[tuple[tuple[str, str, str], int]] = set()
    for attempts in answers.values():
        attempts.sort(key=lambda c: c.number)
        final = attempts[-1]  # the answer the run kept (when it succeeded)
        for own in _by_actor(attempts):  # a cascade: each actor's answers are its own
            first = own[0]
            key = (first.workflow, first.actor, first.fingerprint)
            q = out.setdefault(key, QualityFigures())
            q.answers += 1
            contract = [r for r in first.rules if not r.startswith("check:")]
            q.first_valid += not contract and not first.error
            q.reasked += len(own) > 1
            if (key, first.run_id) not in seen_runs:
                seen_runs.add((key, first.run_id))
                q.runs += 1
                q.repaired_runs += first.run_repairs > 0
            for c in own:
                q.calls += 1
                q.check_failures.update(
                    {r.removeprefix("check:") for r in c.rules if r.startswith("check:")}
                )
                if c is not final or c.run_status != "succeeded":
                    q.thrown_calls += 1
                    q.thrown_tokens += c.tokens
                    q.thrown_cost += c.cost
    for c in gates:  # counted for the answers they judged (the answering actor's key)
        graded = answers.get((c.run_id, c.step.split(":", 1)[0]))
        if not graded:
            continue
        # a gate call carries the number of the answer it judged
        first = next((a for a in graded if a.number == c.number), graded[0])
        q = out[(first.workflow, first.actor, first.fingerprint)]
        q.calls += 1
        q.thrown_calls += 1  # a gate's own answer is never written: its cost is overhead
        q.thrown_tokens += c.tokens
        q.thrown_cost += c.cost
        if c.grade_raw:
            with contextlib.suppress(Exception):  # an unreadable grade gave no score
                q.grades[round(float(parse_json(c.grade_raw, [])["score"]), 1)] += 1
    return out


def _by_actor(attempts: list[QualityCall]) -> list[list[QualityCall]]:
    """A step's calls in order, split where the actor changes (each level of a cascade)."""
    runs: list[list[QualityCall]] = []
    for c in attempts:
        if runs and runs[-1][-1].actor == c.actor:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


@dataclass
class Stats:
    since: float
    until: float
    workflows: list[str] | None = None
    runs: int = 0
    tasks: int = 0  # finished task runs (succeeded + failed)
    by_status: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # error_kind of failed runs
    calls: int = 0
    cached: int = 0
    reasks: int = 0
    retries: int = 0
    repairs: int = 0
    repairs_by_kind: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    first_started: float | None = None
    last_finished: float | None = None
    per_workflow: dict[str, WorkflowStats] = field(default_factory=dict)
    steps: dict[tuple[str, str], Percentiles] = field(default_factory=dict)
    actors: dict[str, Percentiles] = field(default_factory=dict)
    # per step: latencies of uncached calls without provider retries (timeout advice)
    single_tries: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    quality: dict[tuple[str, str, str], QualityFigures] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        return max(0.0, self.until - self.since)

    @property
    def per_minute(self) -> float:
        return self.tasks / (self.window_s / 60) if self.window_s > 0 else 0.0

    @property
    def per_minute_active(self) -> float:
        if self.first_started is None or self.last_finished is None:
            return 0.0
        span = self.last_finished - self.first_started
        return self.tasks / (span / 60) if span > 0 else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "window_s": round(self.window_s, 3),
            "workflows": self.workflows,
            "runs": self.runs,
            "tasks": self.tasks,
            "tasks_per_minute": round(self.per_minute, 4),
            "tasks_per_minute_active": round(self.per_minute_active, 4),
            "by_status": dict(self.by_status),
            "failures_by_reason": dict(self.failures.most_common()),
            "calls": self.calls,
            "cached": self.cached,
            "cache_hit_rate": round(self.cache_hit_rate, 4),
            "reasks": self.reasks,
            "retries": self.retries,
            "repairs": self.repairs,
            "repairs_by_kind": dict(self.repairs_by_kind.most_common()),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": round(self.cost, 8),
            "first_started": self.first_started,
            "last_finished": self.last_finished,
            "per_workflow": {k: v.as_dict() for k, v in sorted(self.per_workflow.items())},
            "steps": [
                {"workflow": wf, "step": step, **p.as_dict()}
                for (wf, step), p in sorted(self.steps.items())
            ],
            "actors": [{"actor": a, **p.as_dict()} for a, p in sorted(self.actors.items())],
            "quality": [
                {"workflow": wf, "actor": actor, "fingerprint": fp, **q.as_dict()}
                for (wf, actor, fp), q in sorted(self.quality.items())
            ],
        }


def collect_stats(
    store: Store,
    *,
    since: float,
    until: float | None = None,
    workflows: Sequence[str] | None = None,
) -> Stats:
    """Numbers over the runs that finished in [since, until] (until defaults to now)."""
    until = time.time() if until is None else until
    stats = Stats(since, until, list(workflows) if workflows else None)
    window = StatsStore(store.db).window(since, until, workflows)
    for g in window.groups:
        wf = stats.per_workflow.setdefault(g.workflow, WorkflowStats())
        finished_tasks = g.tasks if g.status in ("succeeded", "failed") else 0
        for target in (stats, wf):
            target.runs += g.n
            target.tasks += finished_tasks
            target.by_status[g.status] += g.n
            target.input_tokens += g.input_tokens
            target.output_tokens += g.output_tokens
            target.cost += g.cost
        if g.status == "failed":
            stats.failures[g.error_kind or "unknown"] += g.n
        stats.calls += g.calls
        stats.cached += g.cached
        stats.reasks += g.reasks
        stats.retries += g.retries
        stats.repairs += g.repairs
        first, last = g.first_started, g.last_finished
        if first is not None and (stats.first_started is None or first < stats.first_started):
            stats.first_started = first
        if last is not None and (stats.last_finished is None or last > stats.last_finished):
            stats.last_finished = last
    by_workflow: dict[str, list[float]] = defaultdict(list)
    for d in window.durations:
        by_workflow[d.workflow].append(d.duration_ms)
    for name, values in by_workflow.items():
        stats.per_workflow.setdefault(name, WorkflowStats()).duration = Percentiles.of(values)
    steps: dict[tuple[str, str], list[float]] = defaultdict(list)
    actors: dict[str, list[float]] = defaultdict(list)
    for c in window.latencies:
        if c.cached:
            continue
        key = (c.workflow, c.step)
        steps[key].append(c.latency_ms)
        actors[c.actor].append(c.latency_ms)
        if not c.retries:
            stats.single_tries.setdefault(key, []).append(c.latency_ms)
    stats.steps = {k: p for k, v in steps.items() if (p := Percentiles.of(v)) is not None}
    stats.actors = {k: p for k, v in actors.items() if (p := Percentiles.of(v)) is not None}
    stats.repairs_by_kind = Counter(window.repairs)
    stats.quality = quality_of(StatsStore(store.db).quality_calls(since, until, workflows))
    return stats


# ----------------------------------------------------------------------- timeouts
def round_up_nicely(seconds: float) -> float:
    """Whole seconds up to 20 s, 5 s steps to 100 s, 10 s to 200 s, 30 s to 600 s, then 60 s."""
    for limit, step in ((20, 1), (100, 5), (200, 10), (600, 30)):
        if seconds <= limit:
            return float(max(step, math.ceil(seconds / step - 1e-9) * step))
    return float(math.ceil(seconds / 60 - 1e-9) * 60)


def recommend_timeout(p99_ms: float) -> float:
    """max(2 x p99, p99 + 5 s), rounded up nicely; in seconds."""
    p99 = p99_ms / 1000
    return round_up_nicely(max(2 * p99, p99 + 5))


@dataclass(frozen=True)
class TimeoutAdvice:
    workflow: str
    step: str
    samples: int
    p99_ms: float | None
    recommended_s: float | None
    configured_s: float | None  # what applies now: the actor's timeout, else the step's, else
    configured_by: str  # the default: "actor NAME", "step", "default", or "unknown" (no code)

    @property
    def few_samples(self) -> bool:
        return self.samples < MIN_SAMPLES

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "step": self.step,
            "samples": self.samples,
            "p99_ms": round(self.p99_ms, 3) if self.p99_ms is not None else None,
            "recommended_s": self.recommended_s,
            "configured_s": self.configured_s,
            "configured_by": self.configured_by,
            "few_samples": self.few_samples,
        }


def timeout_advice(
    stats: Stats,
    registry: Registry | None = None,
    actor_timeout: Callable[[str], float | None] | None = None,
) -> list[TimeoutAdvice]:
    """Per LLM step: samples, measured p99, recommended and configured timeout.

    `actor_timeout(ref)` gives an actor's own `timeout` setting (it overrides the step's)."""
    configured: dict[tuple[str, str], tuple[float | None, str]] = {}
    for wf in registry or ():
        if stats.workflows and wf.name not in stats.workflows:
            continue
        for cs in wf.steps:
            step = cs.step
            if not isinstance(step, LLMStep):
                continue
            own = None
            if actor_timeout is not None:
                try:
                    own = actor_timeout(step.actors[0])
                except Exception:
                    own = None
            configured[(wf.name, step.name)] = effective_timeout(step, own)
    out = []
    for key in sorted(set(configured) | set(stats.single_tries) | set(stats.steps)):
        values = sorted(stats.single_tries.get(key, []))
        p99 = percentile(values, 99) if values else None
        now, by = configured.get(key, (None, "unknown"))
        out.append(
            TimeoutAdvice(
                key[0],
                key[1],
                len(values),
                p99,
                recommend_timeout(p99) if p99 is not None else None,
                now,
                by,
            )
        )
    return out


# ------------------------------------------------------------------------- prune
@dataclass
class PruneCounts:
    cutoff: float
    dry_run: bool
    include_tasks: bool
    runs: int = 0
    calls: int = 0
    repairs: int = 0
    ticks: int = 0
    tasks: int = 0  # finished tasks deleted (or that would be), 0 unless include_tasks
    tasks_kept: int = 0  # finished tasks older than the cutoff that were kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "dry_run": self.dry_run,
            "include_tasks": self.include_tasks,
            "runs": self.runs,
            "calls": self.calls,
            "repairs": self.repairs,
            "ticks": self.ticks,
            "tasks": self.tasks,
            "tasks_kept": self.tasks_kept,
        }


def prune(
    store: Store,
    cutoff: float,
    *,
    tasks: bool = False,
    dry_run: bool = False,
    batch: int = 5000,
) -> PruneCounts:
    """Delete history older than `cutoff` (see the module docstring); counts what went."""
    out = PruneCounts(cutoff, dry_run, tasks)
    history = StatsStore(store.db)
    older = history.prunable(cutoff)
    if dry_run:
        out.runs, out.calls, out.repairs = older.runs, older.calls, older.repairs
        out.ticks = older.ticks
        out.tasks, out.tasks_kept = (older.tasks, 0) if tasks else (0, older.tasks)
        return out
    while True:  # runs in batches: each its own short transaction
        pruned = history.prune_runs(cutoff, batch)
        out.runs += pruned.runs
        out.calls += pruned.calls
        out.repairs += pruned.repairs
        if pruned.batch < batch:
            break
    out.ticks, out.tasks = history.prune_ticks_and_tasks(cutoff, tasks=tasks)
    out.tasks_kept = 0 if tasks else older.tasks
    return out
