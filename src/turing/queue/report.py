"""What processing did: discoveries, per-workflow tallies, failures and the batch limits
that stop a run from claiming more."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from turing.limits.budget import Budget
from turing.result import RunResult
from turing.store.states import Outcome


@dataclass
class Discovery:
    workflow: str
    count: int = 0
    enqueued: int = 0
    sample_keys: list[str] = field(default_factory=list)
    priority: int = 0
    query_ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "count": self.count,
            "enqueued": self.enqueued,
            "sample_keys": self.sample_keys,
            "priority": self.priority,
            "query_ms": round(self.query_ms, 3),
            "error": self.error,
        }


@dataclass
class WorkflowTally:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    repaired: int = 0
    lost: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    reasks: int = 0
    retries: int = 0
    cached: int = 0
    retrying: int = 0
    deferred: int = 0
    review: int = 0  # held for a reviewer: output stored, sink not run yet


@dataclass(frozen=True)
class BatchLimits:
    """Most tokens or cost one `process_pending_tasks` call may spend before it stops claiming."""

    tokens: int | None = None
    cost: float | None = None

    def budget(self) -> Budget:
        """What the calls of one processing run may reserve (a worker's lasts its life)."""
        return Budget(self.tokens, self.cost)

    def exceeded(self, report: Report) -> str | None:
        tokens = report.total("input_tokens") + report.total("output_tokens")
        if self.tokens is not None and tokens >= self.tokens:
            return (
                f"batch token limit reached ({tokens} >= {self.tokens}); stopped claiming new work"
            )
        cost = report.total_cost()
        if self.cost is not None and cost >= self.cost:
            return (
                f"batch cost limit reached ({cost:.6f} >= {self.cost:g}); stopped claiming new work"
            )
        return None


@dataclass
class Report:
    """What one `process_pending_tasks` call did."""

    dry_run: bool = False
    discovered: list[Discovery] = field(default_factory=list)
    per_workflow: dict[str, WorkflowTally] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    repairs: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    stopped: str | None = None
    circuit_open: bool = False  # stopped because a model host's circuit opened (it passes)
    waiting: dict[str, str] = field(default_factory=dict)  # workflow -> the budget it waits for

    def total(self, attr: str) -> int:
        return sum(int(getattr(t, attr)) for t in self.per_workflow.values())

    def total_cost(self) -> float:
        return sum(t.cost for t in self.per_workflow.values())

    _total = total

    @property
    def processed(self) -> int:
        return self._total("processed")

    @property
    def succeeded(self) -> int:
        return self._total("succeeded")

    @property
    def failed(self) -> int:
        return self._total("failed")

    @property
    def repaired(self) -> int:
        return self._total("repaired")

    @property
    def deferred(self) -> int:
        return self._total("deferred")

    @property
    def review(self) -> int:
        return self._total("review")

    def add(self, result: RunResult, outcome: str) -> None:
        """Count one completed task (`outcome`: an `Outcome`)."""
        tally = self.per_workflow.setdefault(result.workflow, WorkflowTally())
        tally.processed += 1
        usage = result.usage
        tally.input_tokens += usage.input_tokens
        tally.output_tokens += usage.output_tokens
        tally.cost += usage.cost
        tally.calls += usage.calls
        tally.reasks += result.reasks
        tally.retries += usage.retries
        tally.cached += usage.cached
        if result.repairs:
            tally.repaired += 1
            self.repairs.update(r.kind for _, r in result.repairs)
        if outcome == Outcome.SUCCEEDED:
            tally.succeeded += 1
        elif outcome == Outcome.REVIEW:
            tally.review += 1
        elif outcome == Outcome.LOST:
            tally.lost += 1
        elif outcome == Outcome.DEFERRED:  # pending again, not failed (not its fault)
            tally.deferred += 1
            self.failures[f"{failure_reason(result)} (deferred)"] += 1
        elif outcome == Outcome.RETRY:
            tally.retrying += 1
            self.failures[f"{failure_reason(result)} (retry scheduled)"] += 1
        else:
            tally.failed += 1
            self.failures[outcome if outcome != "failed" else failure_reason(result)] += 1

    def merge_discovered(self, found: list[Discovery]) -> None:
        """Fold another discovery round in: counts at their highest, enqueued summed."""
        known = {d.workflow: d for d in self.discovered}
        for d in found:
            if d.workflow not in known:
                self.discovered.append(d)
                known[d.workflow] = d
                continue
            mine = known[d.workflow]
            mine.enqueued += d.enqueued
            mine.query_ms += d.query_ms
            mine.error = mine.error or d.error
            if d.count > mine.count:
                mine.count, mine.sample_keys = d.count, d.sample_keys

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "deferred": self.deferred,
            "review": self.review,
            "repaired": self.repaired,
            "failures_by_reason": dict(self.failures),
            "calls": self.total("calls"),
            "reasks": self.total("reasks"),
            "retries": self.total("retries"),
            "cached": self.total("cached"),
            "input_tokens": self.total("input_tokens"),
            "output_tokens": self.total("output_tokens"),
            "cost": round(self.total_cost(), 8),
            "repairs_by_kind": dict(self.repairs),
            "per_workflow": {k: vars(v) for k, v in sorted(self.per_workflow.items())},
            "discovered": [d.as_dict() for d in self.discovered],
            "duration_s": round(self.duration_s, 3),
            "stopped": self.stopped,
            "circuit_open": self.circuit_open,
            "waiting": dict(self.waiting),
        }


def failure_reason(result: RunResult) -> str:
    """The kind of a failed run's first error (how failures are grouped in reports)."""
    return result.errors[0].kind if result.errors else "unknown"
