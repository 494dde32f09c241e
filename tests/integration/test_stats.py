"""`turing stats` numbers and `turing prune` counts against a known history (both backends),
plus the pure arithmetic: durations, percentiles, timeout rounding."""

from __future__ import annotations

from typing import Any

import pytest

from integration.domain import rows, tag_items
from turing.registry import Registry
from turing.stats import (
    Percentiles,
    collect_stats,
    parse_duration,
    parse_point,
    percentile,
    prune,
    recommend_timeout,
    round_up_nicely,
    timeout_advice,
)
from turing.store import Store
from turing.store.db import Tx

UNTIL = 1_700_000_000.0
SINCE = UNTIL - 3600  # a one-hour window

RUN = (
    "INSERT INTO turing_runs (task_id, workflow, version, fingerprint, subject, status, "
    "error_kind, error, input, output, worker, started_at, finished_at, duration_ms, calls, "
    "reasks, repairs, input_tokens, output_tokens, cost, cached, retries) VALUES (:task_id, "
    ":workflow, 1, 'fp', :subject, :status, :error_kind, :error, '{}', NULL, 'w', :started_at, "
    ":finished_at, :duration_ms, :calls, :reasks, :repairs, :input_tokens, :output_tokens, "
    ":cost, :cached, :retries) RETURNING id"
)
CALL = (
    "INSERT INTO turing_calls (run_id, step, number, actor, messages, raw, input_tokens, "
    "output_tokens, latency_ms, violations, error, cost, cached, retries) VALUES (:run_id, "
    ":step, :number, :actor, '[]', '', 0, 0, :latency_ms, '[]', NULL, 0, :cached, :retries)"
)
REPAIR = (
    "INSERT INTO turing_repairs (run_id, step, kind, path, before, after) "
    "VALUES (:run_id, 'tag', :kind, '$', 'a', 'b')"
)


def add_run(tx: Tx, **fields: Any) -> int:
    values = {
        "task_id": None,
        "workflow": "tag_items",
        "subject": None,
        "status": "succeeded",
        "error_kind": None,
        "error": None,
        "duration_ms": 1.0,
        "calls": 0,
        "reasks": 0,
        "repairs": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost": 0.0,
        "cached": 0,
        "retries": 0,
        **fields,
    }
    values.setdefault("started_at", values["finished_at"] - values["duration_ms"] / 1000)
    [row] = tx.sql(RUN, values)
    return int(row["id"])


def add_call(tx: Tx, run_id: int, latency_ms: float, **fields: Any) -> None:
    values = {"step": "tag", "number": 1, "actor": "ollama:m", "cached": 0, "retries": 0}
    tx.sql(CALL, {**values, **fields, "run_id": run_id, "latency_ms": latency_ms})


def known_history(store: Store) -> None:
    """100 task runs of tag_items in the window (i = 1..100):

    - status: 1-90 succeeded, 91-95 failed output_invalid, 96-98 failed actor,
      99-100 discarded (lease lost); duration i*10 ms; 10 + 5 tokens and 0.001 each
    - one uncached call each, latency i ms; the call of run 100 needed a provider retry
    - runs 1-20: also a re-ask answered from the cache (latency 0)
    - repairs: runs 1-10 strip_fences, 11-13 wrap_array
    and 20 `turing exec` runs of `summarize` (no task, no calls), plus 50 runs an hour
    before the window that must not count.
    """
    with store.db.tx() as tx:
        for i in range(1, 101):
            status, kind = "succeeded", None
            if 91 <= i <= 95:
                status, kind = "failed", "output_invalid"
            elif 96 <= i <= 98:
                status, kind = "failed", "actor"
            elif i > 98:
                status, kind = "discarded", "lease_lost"
            run = add_run(
                tx,
                task_id=i,
                subject=str(i),
                status=status,
                error_kind=kind,
                finished_at=SINCE + i * 30,
                duration_ms=i * 10.0,
                calls=2 if i <= 20 else 1,
                cached=1 if i <= 20 else 0,
                reasks=1 if i <= 20 else 0,
                repairs=1 if i <= 13 else 0,
                retries=1 if i == 100 else 0,
                input_tokens=10,
                output_tokens=5,
                cost=0.001,
            )
            add_call(tx, run, float(i), retries=1 if i == 100 else 0)
            if i <= 20:
                add_call(tx, run, 0.0, number=2, cached=1)
            if i <= 13:
                tx.sql(REPAIR, {"run_id": run, "kind": "strip_fences" if i <= 10 else "wrap_array"})
        for i in range(20):
            add_run(tx, workflow="summarize", finished_at=SINCE + 60 + i, duration_ms=5.0)
        for i in range(50):
            old = add_run(
                tx, task_id=1000 + i, status="failed", error_kind="old", finished_at=SINCE - 1 - i
            )
            add_call(tx, old, 99_999.0)
            tx.sql(REPAIR, {"run_id": old, "kind": "old_kind"})


def test_stats_match_a_known_history(store: Store) -> None:
    known_history(store)
    s = collect_stats(store, since=SINCE, until=UNTIL)
    assert s.runs == 120
    assert dict(s.by_status) == {"succeeded": 110, "failed": 8, "discarded": 2}
    assert s.tasks == 98  # finished task runs; discarded and exec runs are not throughput
    assert s.per_minute == pytest.approx(98 / 60)
    assert s.first_started == pytest.approx(SINCE + 30 - 0.01)
    assert s.last_finished == SINCE + 3000
    assert s.per_minute_active == pytest.approx(98 / ((3000 - 30 + 0.01) / 60))
    assert dict(s.failures) == {"output_invalid": 5, "actor": 3}
    assert (s.calls, s.cached, s.reasks, s.retries, s.repairs) == (120, 20, 20, 1, 13)
    assert s.cache_hit_rate == pytest.approx(20 / 120)
    assert dict(s.repairs_by_kind) == {"strip_fences": 10, "wrap_array": 3}
    assert (s.input_tokens, s.output_tokens) == (1000, 500)
    assert s.cost == pytest.approx(0.1)

    # latency per step and per actor: the 100 uncached calls, 1..100 ms, nearest rank
    expected = Percentiles(100, 50.0, 95.0, 99.0, 100.0, 50.5)
    assert s.steps == {("tag_items", "tag"): expected}
    assert s.actors == {"ollama:m": expected}
    # run duration per workflow: succeeded and failed runs only (i = 1..98, i*10 ms)
    tagged = s.per_workflow["tag_items"]
    assert tagged.duration == Percentiles(98, 490.0, 940.0, 980.0, 980.0, 495.0)
    assert (tagged.runs, tagged.tasks, tagged.cost) == (100, 98, pytest.approx(0.1))
    assert s.per_workflow["summarize"].duration == Percentiles(20, 5.0, 5.0, 5.0, 5.0, 5.0)
    assert s.per_workflow["summarize"].tasks == 0

    out = s.as_dict()
    assert out["steps"] == [
        {
            "workflow": "tag_items",
            "step": "tag",
            "n": 100,
            "p50_ms": 50.0,
            "p95_ms": 95.0,
            "p99_ms": 99.0,
            "max_ms": 100.0,
            "mean_ms": 50.5,
        }
    ]
    assert out["failures_by_reason"] == {"output_invalid": 5, "actor": 3}
    assert out["tasks_per_minute"] == round(98 / 60, 4)


def test_stats_filter_by_workflow_and_window(store: Store) -> None:
    known_history(store)
    s = collect_stats(store, since=SINCE, until=UNTIL, workflows=["summarize"])
    assert (s.runs, s.tasks, s.calls, s.steps, s.repairs_by_kind) == (20, 0, 0, {}, {})
    # the first 10 minutes of the window: runs 1..20 of tag_items, summarize's 20
    early = collect_stats(store, since=SINCE, until=SINCE + 600)
    assert early.runs == 40
    assert early.steps[("tag_items", "tag")].n == 20
    assert dict(early.repairs_by_kind) == {"strip_fences": 10, "wrap_array": 3}
    # nothing at all
    empty = collect_stats(store, since=UNTIL + 1, until=UNTIL + 2)
    assert (empty.runs, empty.per_minute, empty.per_minute_active) == (0, 0.0, 0.0)
    assert empty.as_dict()["steps"] == []


def test_timeout_advice_from_the_measured_p99(store: Store) -> None:
    known_history(store)
    s = collect_stats(store, since=SINCE, until=UNTIL)
    registry = Registry([tag_items()])  # its LLM step `tag` has the default 60 s timeout
    [advice] = timeout_advice(s, registry)
    # 99 samples (the call with a provider retry is left out), p99 = 99 ms
    assert (advice.workflow, advice.step, advice.samples) == ("tag_items", "tag", 99)
    assert advice.p99_ms == 99.0
    assert advice.recommended_s == 6.0  # max(2 x 0.099, 0.099 + 5) = 5.099 -> 6
    assert (advice.configured_s, advice.configured_by) == (60.0, "default")
    assert advice.few_samples  # fewer than 100
    # an actor's own timeout wins over the step's
    [by_actor] = timeout_advice(s, registry, lambda ref: 45.0 if ref == "m" else None)
    assert (by_actor.configured_s, by_actor.configured_by) == (45.0, "actor m")
    # without the code (history of a workflow that is gone) the configured value is unknown
    [bare] = timeout_advice(s)
    assert (bare.configured_s, bare.configured_by, bare.recommended_s) == (None, "unknown", 6.0)


def test_timeout_advice_lists_llm_steps_without_samples(store: Store) -> None:
    s = collect_stats(store, since=SINCE, until=UNTIL)
    [advice] = timeout_advice(s, Registry([tag_items()]))
    assert (advice.samples, advice.p99_ms, advice.recommended_s) == (0, None, None)
    assert advice.as_dict()["few_samples"] is True


# ---------------------------------------------------------------------------- prune
CUTOFF = UNTIL - 86400

TASK = (
    "INSERT INTO turing_tasks (workflow, version, subject, input, status, lease_owner, "
    "lease_expires_at, created_at, updated_at, finished_at) VALUES ('w', 1, :subject, '{}', "
    ":status, :owner, :lease, :created, :created, :finished)"
)
TICK = (
    "INSERT INTO turing_schedule_ticks (schedule, tick_at, worker, fired_at) "
    "VALUES (:schedule, :tick_at, 'w', :tick_at)"
)


def pruneable_history(store: Store) -> None:
    old, new = CUTOFF - 3600, CUTOFF + 3600
    with store.db.tx() as tx:
        for i in range(5):  # old runs: 2 calls and a repair each
            run = add_run(tx, task_id=i + 1, finished_at=old - i)
            add_call(tx, run, 1.0)
            add_call(tx, run, 2.0, number=2)
            tx.sql(REPAIR, {"run_id": run, "kind": "strip_fences"})
        for i in range(3):  # newer runs: kept with their calls
            run = add_run(tx, task_id=10 + i, finished_at=new + i)
            add_call(tx, run, 1.0)
        tasks = [
            ("old-ok-1", "succeeded", None, None, old),
            ("old-ok-2", "succeeded", None, None, old),
            ("old-failed", "failed", None, None, old),
            ("old-pending", "pending", None, None, None),  # created long ago, never done
            ("old-running", "running", "w1", new, None),
            ("new-ok", "succeeded", None, None, new),
        ]
        for subject, status, owner, lease, finished in tasks:
            tx.sql(
                TASK,
                {
                    "subject": subject,
                    "status": status,
                    "owner": owner,
                    "lease": lease,
                    "created": old - 86400,
                    "finished": finished,
                },
            )
        for schedule, at in [("a", old - 600), ("a", old - 300), ("a", old), ("b", old)]:
            tx.sql(TICK, {"schedule": schedule, "tick_at": at})
        tx.sql(TICK, {"schedule": "c", "tick_at": new})


def _tables(store: Store) -> dict[str, Any]:
    return {
        "runs": rows(store, "SELECT COUNT(*) AS n FROM turing_runs")[0]["n"],
        "calls": rows(store, "SELECT COUNT(*) AS n FROM turing_calls")[0]["n"],
        "repairs": rows(store, "SELECT COUNT(*) AS n FROM turing_repairs")[0]["n"],
        "tasks": sorted(r["subject"] for r in rows(store, "SELECT subject FROM turing_tasks")),
        "ticks": [
            (r["schedule"], r["tick_at"])
            for r in rows(
                store, "SELECT schedule, tick_at FROM turing_schedule_ticks ORDER BY 1, 2"
            )
        ],
    }


def test_prune_dry_run_counts_exactly_what_prune_deletes(store: Store) -> None:
    pruneable_history(store)
    before = _tables(store)
    dry = prune(store, CUTOFF, dry_run=True)
    assert _tables(store) == before  # a dry run changes nothing
    assert (dry.runs, dry.calls, dry.repairs, dry.ticks, dry.tasks, dry.tasks_kept) == (
        5, 10, 5, 2, 0, 3,
    )  # fmt: skip
    with_tasks = prune(store, CUTOFF, dry_run=True, tasks=True)
    assert (with_tasks.tasks, with_tasks.tasks_kept) == (3, 0)

    done = prune(store, CUTOFF, batch=2)  # several batches of runs
    assert done.as_dict() | {"dry_run": True} == dry.as_dict()
    after = _tables(store)
    assert (after["runs"], after["calls"], after["repairs"]) == (3, 3, 0)
    assert after["tasks"] == before["tasks"]  # tasks are kept unless asked
    # each schedule keeps its newest tick, even when that is older than the cutoff
    old = CUTOFF - 3600
    assert after["ticks"] == [("a", old), ("b", old), ("c", CUTOFF + 3600)]
    again = prune(store, CUTOFF)
    assert (again.runs, again.calls, again.repairs, again.ticks) == (0, 0, 0, 0)


def test_prune_tasks_deletes_finished_tasks_only(store: Store) -> None:
    pruneable_history(store)
    dry = prune(store, CUTOFF, tasks=True, dry_run=True)
    done = prune(store, CUTOFF, tasks=True)
    assert dry.tasks == done.tasks == 3
    assert _tables(store)["tasks"] == ["new-ok", "old-pending", "old-running"]


# --------------------------------------------------------------------------- pure
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("15min", 900), ("24h", 86400), ("7d", 604800), ("2w", 1209600),
     ("1.5h", 5400), (" 30D ", 2592000)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_point() -> None:
    assert parse_point("24h", now=UNTIL) == UNTIL - 86400
    assert parse_point("2023-11-14", now=UNTIL) == 1_699_920_000.0
    assert parse_point("2023-11-14T22:13:20", now=UNTIL) == UNTIL
    assert parse_point("2023-11-14T23:13:20+01:00", now=UNTIL) == UNTIL
    for bad in ("yesterday", "24", "h24", ""):
        with pytest.raises(ValueError, match="neither a duration"):
            parse_point(bad, now=UNTIL)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0 and percentile([1.0, 2.0], 51) == 2.0
    assert Percentiles.of([]) is None


@pytest.mark.parametrize(
    ("p99_ms", "seconds"),
    [(0, 5), (99, 6), (1200, 7), (4000, 9), (8000, 16), (9100, 19), (12_000, 25),
     (30_000, 60), (47_000, 95), (60_000, 120), (99_000, 200), (130_000, 270),
     (400_000, 840)],
)  # fmt: skip
def test_recommended_timeout(p99_ms: float, seconds: float) -> None:
    assert recommend_timeout(p99_ms) == seconds


def test_round_up_nicely_never_rounds_down() -> None:
    for tenth in range(1, 20_000, 7):
        value = tenth / 10
        assert round_up_nicely(value) >= value
    assert [round_up_nicely(v) for v in (0.2, 20, 20.1, 100.1, 200.1, 600.1)] == [
        1, 20, 25, 110, 210, 660,
    ]  # fmt: skip
