-- Named queries of the dashboard (turing.store.browse): reads for its pages, and the
-- heartbeat's row of each live process. Same names and parameters as sqlite/queries_browse.sql.
-- Task pages are keyset pages, newest first (`id < :before`, never OFFSET): each filter
-- combination has a query whose index walks in id order (turing_tasks_by_status,
-- turing_tasks_by_workflow, the subject index), the other filters ride along.

-- name: beat_worker
INSERT INTO turing_workers (worker, started_at, beat_at, lease_s, held)
VALUES (:worker, :now, :now, :lease_s, :held)
ON CONFLICT (worker) DO UPDATE
SET beat_at = excluded.beat_at, lease_s = excluded.lease_s, held = excluded.held;

-- name: forget_worker
DELETE FROM turing_workers WHERE worker = :worker;

-- name: prune_workers
DELETE FROM turing_workers WHERE beat_at < :stale;

-- name: browse_workers
SELECT worker, started_at, beat_at, lease_s, held FROM turing_workers ORDER BY worker;

-- name: browse_lease_owners
SELECT lease_owner AS worker, COUNT(*) AS held, MAX(lease_expires_at) AS lease_until
FROM turing_tasks WHERE status = 'running'
GROUP BY lease_owner ORDER BY lease_owner;

-- name: browse_runs_since
SELECT status, COUNT(*) AS n, SUM(cost) AS cost FROM turing_runs
WHERE finished_at >= :since
GROUP BY status;

-- name: browse_paused
SELECT workflow, paused_by, reason, paused_at FROM turing_paused ORDER BY workflow;

-- name: browse_limit_slots
SELECT key, COUNT(*) AS n FROM turing_limit_slots WHERE expires_at > :now
GROUP BY key ORDER BY key;

-- name: browse_limit_grants
SELECT key, COUNT(*) AS n, SUM(amount) AS amount FROM turing_limit_grants
WHERE granted_at >= :since
GROUP BY key ORDER BY key;

-- name: browse_budgets
SELECT p.key, p.period_start, p.spent,
       (SELECT SUM(h.amount) FROM turing_budget_holds h
        WHERE h.key = p.key AND h.period_start = p.period_start AND h.expires_at > :now) AS held
FROM turing_budget_periods p
WHERE p.period_start = (SELECT MAX(o.period_start) FROM turing_budget_periods o
                        WHERE o.key = p.key)
ORDER BY p.key;

-- name: browse_tasks
SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
FROM turing_tasks
WHERE id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
ORDER BY id DESC
LIMIT :limit;

-- name: browse_tasks_status
SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
FROM turing_tasks
WHERE status = :status AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
ORDER BY id DESC
LIMIT :limit;

-- name: browse_tasks_workflow_status
SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
FROM turing_tasks
WHERE workflow = :workflow AND status = :status AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
ORDER BY id DESC
LIMIT :limit;

-- name: browse_tasks_workflow
-- One branch per status, each walking turing_tasks_by_workflow in id order, merged.
SELECT * FROM (
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'pending' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_pending
UNION ALL
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'running' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_running
UNION ALL
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'review' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_review
UNION ALL
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'submitted' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_submitted
UNION ALL
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'succeeded' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_succeeded
UNION ALL
SELECT * FROM (SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
    FROM turing_tasks WHERE workflow = :workflow AND status = 'failed' AND id < :before
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
    ORDER BY id DESC LIMIT :limit) AS t_failed
) AS merged
ORDER BY id DESC
LIMIT :limit;

-- name: browse_tasks_subject
-- Subjects starting with the search text: a byte-wise range the subject index serves
-- (PostgreSQL: text_pattern_ops operators; SQLite: BINARY collation).
SELECT id, workflow, version, subject, status, attempts, priority, last_error, created_at,
       updated_at, finished_at, not_before
FROM turing_tasks
WHERE subject ~>=~ :subject_lo AND subject ~<~ :subject_hi AND id < :before
  AND (:any_workflow OR workflow = :workflow)
  AND (:any_status OR status = :status)
  AND (:any_reason OR last_error = :reason OR last_error LIKE :reason_like ESCAPE '\')
  AND (:any_since OR updated_at >= :since)
ORDER BY id DESC
LIMIT :limit;

-- name: browse_failure_reasons
-- Failed tasks grouped by reason (a failed task's last error starts with its kind).
SELECT reason, workflow, COUNT(*) AS n, MAX(updated_at) AS latest, MAX(id) AS last_id
FROM (SELECT id, workflow, updated_at,
             CASE WHEN strpos(last_error, ':') > 0 THEN split_part(last_error, ':', 1)
            ELSE COALESCE(last_error, '') END AS reason
      FROM turing_tasks WHERE status = 'failed') AS f
GROUP BY reason, workflow
ORDER BY n DESC, reason, workflow;

-- name: browse_task_runs
SELECT id, status, error_kind, error, worker, started_at, finished_at, duration_ms, calls,
       reasks, repairs, input_tokens, output_tokens, cost, cached, fingerprint
FROM turing_runs WHERE task_id = :task_id
ORDER BY id DESC
LIMIT :limit;

-- name: browse_task_errors
SELECT id, last_error FROM turing_tasks WHERE id IN (SELECT unnest(CAST(:ids AS BIGINT[])));

-- name: browse_latencies
SELECT r.workflow, c.step, c.latency_ms
FROM turing_calls c JOIN turing_runs r ON r.id = c.run_id
WHERE r.finished_at >= :since;

-- name: browse_cost_buckets
SELECT CAST(FLOOR(finished_at / :bucket_s) AS BIGINT) AS bucket, COUNT(*) AS n, SUM(cost) AS cost,
       SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed
FROM turing_runs
WHERE finished_at >= :since
GROUP BY CAST(FLOOR(finished_at / :bucket_s) AS BIGINT)
ORDER BY bucket;
