-- Named queries of the worker (leases, schedule ticks), turing stats and turing prune.
-- Same names and parameters as sqlite/queries_worker.sql (a test checks it).

-- name: extend_leases
-- Heartbeat: every task this worker still holds keeps its lease (guarded by owner, so a
-- task another worker reclaimed meanwhile is left alone). The rows are locked in id order
-- and a row another transaction holds is skipped, not waited for: a plain multi-row UPDATE
-- locks in scan order and deadlocked with other multi-row updates of the same rows. A
-- skipped row is being completed by us or reclaimed after its lease ran out; the next beat
-- extends it if it is still ours. NO KEY UPDATE is the lock the UPDATE itself takes.
UPDATE turing_tasks SET lease_expires_at = :until
WHERE id IN (
    SELECT id FROM turing_tasks
    WHERE status = 'running' AND lease_owner = :owner
    ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED
)
  AND status = 'running' AND lease_owner = :owner;

-- name: owned_tasks
SELECT id, workflow, version, subject, input, attempts, priority FROM turing_tasks
WHERE status = 'running' AND lease_owner = :owner
ORDER BY id;

-- name: claim_tick
INSERT INTO turing_schedule_ticks (schedule, tick_at, worker, fired_at)
VALUES (:schedule, :tick_at, :worker, :now)
ON CONFLICT (schedule, tick_at) DO NOTHING;

-- name: finish_tick
UPDATE turing_schedule_ticks SET finished_at = :now, tasks = :tasks, error = :error
WHERE schedule = :schedule AND tick_at = :tick_at AND worker = :worker;

-- name: last_ticks
SELECT t.schedule, t.tick_at, t.worker, t.fired_at, t.finished_at, t.tasks, t.error
FROM turing_schedule_ticks t
WHERE t.tick_at = (SELECT MAX(o.tick_at) FROM turing_schedule_ticks o
                   WHERE o.schedule = t.schedule)
ORDER BY t.schedule;

-- name: list_ticks
SELECT schedule, tick_at, worker, fired_at, finished_at, tasks, error
FROM turing_schedule_ticks
WHERE (:any_schedule OR schedule = :schedule)
ORDER BY schedule, tick_at;

-- name: stats_runs
SELECT workflow, status, error_kind, COUNT(*) AS n,
       SUM(CASE WHEN task_id IS NULL THEN 0 ELSE 1 END) AS tasks,
       SUM(calls) AS calls, SUM(reasks) AS reasks, SUM(repairs) AS repairs,
       SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
       SUM(cost) AS cost, SUM(cached) AS cached, SUM(retries) AS retries,
       MIN(started_at) AS first_started, MAX(finished_at) AS last_finished
FROM turing_runs
WHERE finished_at >= :since AND finished_at <= :until
  AND (:any_workflow OR workflow = ANY(:workflows))
GROUP BY workflow, status, error_kind
ORDER BY workflow, status, error_kind;

-- name: stats_run_durations
SELECT workflow, duration_ms FROM turing_runs
WHERE finished_at >= :since AND finished_at <= :until AND status IN ('succeeded', 'failed')
  AND (:any_workflow OR workflow = ANY(:workflows));

-- name: stats_call_latencies
SELECT r.workflow, c.step, c.actor, c.latency_ms, c.cached, c.retries
FROM turing_calls c JOIN turing_runs r ON r.id = c.run_id
WHERE r.finished_at >= :since AND r.finished_at <= :until
  AND c.batch_id IS NULL  -- a batch's answers have no latency of their own
  AND (:any_workflow OR r.workflow = ANY(:workflows));

-- name: stats_repairs
SELECT p.kind, COUNT(*) AS n
FROM turing_repairs p JOIN turing_runs r ON r.id = p.run_id
WHERE r.finished_at >= :since AND r.finished_at <= :until
  AND (:any_workflow OR r.workflow = ANY(:workflows))
GROUP BY p.kind
ORDER BY p.kind;

-- name: prune_counts
SELECT
    (SELECT COUNT(*) FROM turing_runs WHERE finished_at < :cutoff) AS runs,
    (SELECT COUNT(*) FROM turing_calls c JOIN turing_runs r ON r.id = c.run_id
     WHERE r.finished_at < :cutoff) AS calls,
    (SELECT COUNT(*) FROM turing_repairs p JOIN turing_runs r ON r.id = p.run_id
     WHERE r.finished_at < :cutoff) AS repairs,
    (SELECT COUNT(*) FROM turing_tasks
     WHERE status IN ('succeeded', 'failed') AND finished_at < :cutoff) AS tasks,
    (SELECT COUNT(*) FROM turing_schedule_ticks t
     WHERE t.tick_at < :cutoff
       AND t.tick_at < (SELECT MAX(o.tick_at) FROM turing_schedule_ticks o
                        WHERE o.schedule = t.schedule)) AS ticks;

-- name: prune_run_ids
SELECT id FROM turing_runs WHERE finished_at < :cutoff ORDER BY id LIMIT :limit;

-- name: prune_calls
DELETE FROM turing_calls WHERE run_id = ANY(:ids);

-- name: prune_repairs
DELETE FROM turing_repairs WHERE run_id = ANY(:ids);

-- name: prune_runs
DELETE FROM turing_runs WHERE id = ANY(:ids);

-- name: prune_tasks
-- Finished tasks only: a pending or running task is never touched.
DELETE FROM turing_tasks WHERE status IN ('succeeded', 'failed') AND finished_at < :cutoff;

-- name: prune_ticks
-- Each schedule keeps its newest tick, so a restarted worker does not fire it again.
DELETE FROM turing_schedule_ticks
WHERE tick_at < :cutoff
  AND tick_at < (SELECT MAX(o.tick_at) FROM turing_schedule_ticks o
                 WHERE o.schedule = turing_schedule_ticks.schedule);

-- name: stats_quality_calls
-- Every model call of the window's runs, for the quality figures (first-answer validity,
-- re-asks, repairs, check failures, what thrown-away answers cost).
SELECT r.id AS run_id, r.workflow, r.fingerprint, r.status, r.repairs, r.reasks,
       c.step, c.number, c.actor, c.violations, c.error, c.input_tokens, c.output_tokens,
       c.cost, CASE WHEN c.step LIKE '%grade' THEN c.raw END AS grade_raw
FROM turing_calls c JOIN turing_runs r ON r.id = c.run_id
WHERE r.finished_at >= :since AND r.finished_at <= :until
  AND (:any_workflow OR r.workflow = ANY(:workflows))
ORDER BY c.run_id, c.step, c.number;
