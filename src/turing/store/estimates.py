"""History read for `turing estimate` (the arithmetic is in `turing.estimate`)."""

from __future__ import annotations

from dataclasses import dataclass

from turing.store.db import Database


@dataclass(frozen=True)
class StepHistory:
    """What one step's model calls used over `runs` finished runs (cache hits left out)."""

    step: str
    runs: int
    calls: int
    input_tokens: int
    output_tokens: int


def step_history(db: Database, workflow: str, fingerprint: str = "") -> dict[str, StepHistory]:
    """Per step of `workflow`, its calls and tokens over the finished runs of `fingerprint`
    (every version of the workflow when ""); empty when there are no runs."""
    with db.read() as tx:
        row = tx.one("estimate_runs", workflow=workflow, fingerprint=fingerprint)
        runs = int(row["runs"]) if row is not None else 0
        if not runs:
            return {}
        calls = tx.q("estimate_calls", workflow=workflow, fingerprint=fingerprint)
    return {
        str(r["step"]): StepHistory(
            str(r["step"]),
            runs,
            int(r["calls"]),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
        )
        for r in calls
    }
