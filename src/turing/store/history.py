"""Writing run history: one row per run, one per model call, one per repair.

Runs are written in bulk: their ids are reserved first (a sequence on PostgreSQL, the
write lock on SQLite), so calls and repairs can name their run without a round trip each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turing.result import RunResult
from turing.store.db import Tx


@dataclass(frozen=True)
class Entry:
    """One run to record: its task (if any), result, status and error override."""

    result: RunResult
    worker: str
    task_id: int | None = None
    subject: str | None = None
    data: Mapping[str, Any] | None = None
    status: str | None = None
    error: tuple[str, str] | None = None


def run_params(entry: Entry) -> dict[str, Any]:
    result, error = entry.result, entry.error
    if error is None and result.errors:
        error = (result.errors[0].kind, "; ".join(e.message for e in result.errors))
    finished = time.time()
    usage = result.usage
    return {
        "task_id": entry.task_id,
        "workflow": result.workflow,
        "version": result.version,
        "fingerprint": result.fingerprint,
        "subject": entry.subject,
        "status": entry.status or result.status,
        "error_kind": error[0] if error else None,
        "error": error[1][:4000] if error else None,
        "input": json.dumps(entry.data, default=str),
        "output": json.dumps(result.output, default=str) if result.output is not None else None,
        "worker": entry.worker,
        "started_at": finished - result.duration_s,
        "finished_at": finished,
        "duration_ms": result.duration_s * 1000,
        "calls": len(result.attempts),
        "reasks": result.reasks,
        "repairs": len(result.repairs),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": usage.cost,
        "cached": usage.cached,
        "retries": usage.retries,
    }


def record(tx: Tx, entry: Entry) -> int:
    """Write one run with its calls and repairs; returns the run id."""
    return record_many(tx, [entry])[0]


def record_many(tx: Tx, entries: Sequence[Entry]) -> list[int]:
    """Write runs with their calls and repairs: ids reserved in one statement, then one
    bulk insert each for runs, calls and repairs (pipelined on PostgreSQL). Returns the ids."""
    if not entries:
        return []
    ids = [int(r["id"]) for r in tx.q("reserve_run_ids", n=len(entries))]
    runs, calls, repairs = [], [], []
    for run_id, entry in zip(ids, entries, strict=True):
        runs.append(run_params(entry) | {"id": run_id})
        result = entry.result
        calls += [
            {
                "run_id": run_id,
                "step": a.step,
                "number": a.number,
                "actor": a.actor,
                "messages": json.dumps(list(a.messages)),
                "raw": a.raw,
                "input_tokens": a.usage.input_tokens,
                "output_tokens": a.usage.output_tokens,
                "latency_ms": a.latency_s * 1000,
                "violations": json.dumps([v.__dict__ for v in a.violations]),
                "error": a.error,
                "cost": a.usage.cost,
                "cached": a.usage.cached,
                "retries": a.usage.retries,
                "batch_id": a.batch,
            }
            for a in result.attempts
        ]
        repairs += [
            {"run_id": run_id, "step": step, "kind": r.kind, "path": r.path}
            | {"before": r.before, "after": r.after}
            for step, r in result.repairs
        ]
    tx.many("insert_runs", runs)
    if calls:
        tx.many("insert_call", calls)
    if repairs:
        tx.many("insert_repair", repairs)
    return ids
