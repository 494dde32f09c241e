"""History read for `turing stats` and deleted by `turing prune` (the numbers and percentiles
are computed in `turing.stats`; this module only runs the queries and types their rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turing.store.db import Database, Row
from turing.store.store import _filter


def _int(value: Any) -> int:
    return int(value or 0)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class RunGroup:
    """Runs of one workflow with one status and error kind, summed."""

    workflow: str
    status: str
    error_kind: str | None
    n: int
    tasks: int  # runs of a task (not `turing exec`)
    calls: int
    reasks: int
    repairs: int
    input_tokens: int
    output_tokens: int
    cost: float
    cached: int
    retries: int
    first_started: float | None
    last_finished: float | None

    @classmethod
    def of(cls, r: Row) -> RunGroup:
        return cls(
            str(r["workflow"]),
            str(r["status"]),
            r["error_kind"],
            _int(r["n"]),
            _int(r["tasks"]),
            _int(r["calls"]),
            _int(r["reasks"]),
            _int(r["repairs"]),
            _int(r["input_tokens"]),
            _int(r["output_tokens"]),
            float(r["cost"] or 0.0),
            _int(r["cached"]),
            _int(r["retries"]),
            _float_or_none(r["first_started"]),
            _float_or_none(r["last_finished"]),
        )


@dataclass(frozen=True)
class RunDuration:
    workflow: str
    duration_ms: float


@dataclass(frozen=True)
class CallLatency:
    workflow: str
    step: str
    actor: str
    latency_ms: float
    cached: bool
    retries: int


@dataclass(frozen=True)
class QualityCall:
    """One model call with what its run became (for the quality figures)."""

    run_id: int
    workflow: str
    fingerprint: str
    run_status: str
    run_repairs: int
    run_reasks: int
    step: str
    number: int
    actor: str
    rules: tuple[str, ...]  # the rules its answer broke (check:<name> for checks)
    error: str | None
    tokens: int
    cost: float
    grade_raw: str | None = None  # a grader call's answer (its score inside)


@dataclass(frozen=True)
class HistoryWindow:
    """What `turing stats` reads about the runs that finished in one window."""

    groups: list[RunGroup]
    durations: list[RunDuration]  # succeeded and failed runs
    latencies: list[CallLatency]
    repairs: dict[str, int]  # repairs by kind


@dataclass(frozen=True)
class PrunableCounts:
    """What lies before a cutoff: runs, their calls and repairs, finished tasks, and ticks
    (each schedule's newest left out)."""

    runs: int
    calls: int
    repairs: int
    tasks: int
    ticks: int


@dataclass(frozen=True)
class PrunedRuns:
    """One batch of runs deleted with their calls and repairs."""

    runs: int
    calls: int
    repairs: int
    batch: int  # the run ids selected for the batch


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def window(
        self, since: float, until: float, workflows: Sequence[str] | None = None
    ) -> HistoryWindow:
        """Runs that finished in [since, until] (of these workflows, None for all), in one
        read transaction."""
        params = {"since": since, "until": until, **_filter(workflows)}
        with self.db.read() as tx:
            groups = tx.q("stats_runs", **params)
            durations = tx.q("stats_run_durations", **params)
            latencies = tx.q("stats_call_latencies", **params)
            repairs = tx.q("stats_repairs", **params)
        return HistoryWindow(
            [RunGroup.of(g) for g in groups],
            [RunDuration(str(r["workflow"]), float(r["duration_ms"])) for r in durations],
            [
                CallLatency(
                    str(r["workflow"]),
                    str(r["step"]),
                    str(r["actor"]),
                    float(r["latency_ms"]),
                    bool(r["cached"]),
                    _int(r["retries"]),
                )
                for r in latencies
            ],
            {str(r["kind"]): int(r["n"]) for r in repairs},
        )

    def quality_calls(
        self, since: float, until: float, workflows: Sequence[str] | None = None
    ) -> list[QualityCall]:
        params = {"since": since, "until": until, **_filter(workflows)}
        with self.db.read() as tx:
            rows = tx.q("stats_quality_calls", **params)
        return [
            QualityCall(
                int(r["run_id"]),
                str(r["workflow"]),
                str(r["fingerprint"] or ""),
                str(r["status"]),
                _int(r["repairs"]),
                _int(r["reasks"]),
                str(r["step"]),
                int(r["number"]),
                str(r["actor"]),
                tuple(v.get("rule", "") for v in json.loads(r["violations"] or "[]")),
                r["error"],
                _int(r["input_tokens"]) + _int(r["output_tokens"]),
                float(r["cost"] or 0.0),
                r["grade_raw"],
            )
            for r in rows
        ]

    # ----------------------------------------------------------------- pruning
    def prunable(self, cutoff: float) -> PrunableCounts:
        with self.db.read() as tx:
            row = tx.one("prune_counts", cutoff=cutoff)
        assert row is not None  # one row of counts, always
        return PrunableCounts(
            _int(row["runs"]),
            _int(row["calls"]),
            _int(row["repairs"]),
            _int(row["tasks"]),
            _int(row["ticks"]),
        )

    def prune_runs(self, cutoff: float, limit: int) -> PrunedRuns:
        """Delete up to `limit` runs that finished before `cutoff`, with their calls and
        repairs, in one short transaction."""
        with self.db.tx() as tx:
            ids = [int(r["id"]) for r in tx.q("prune_run_ids", cutoff=cutoff, limit=limit)]
            if not ids:
                return PrunedRuns(0, 0, 0, 0)
            calls = int(tx.x("prune_calls", ids=ids))
            repairs = int(tx.x("prune_repairs", ids=ids))
            runs = int(tx.x("prune_runs", ids=ids))
        return PrunedRuns(runs, calls, repairs, len(ids))

    def prune_ticks_and_tasks(self, cutoff: float, *, tasks: bool) -> tuple[int, int]:
        """Delete ticks before `cutoff` (each schedule keeps its newest) and, if `tasks`,
        finished tasks; (ticks, tasks) deleted, in one transaction."""
        with self.db.tx() as tx:
            ticks = int(tx.x("prune_ticks", cutoff=cutoff))
            gone = int(tx.x("prune_tasks", cutoff=cutoff)) if tasks else 0
        return ticks, gone
