-- Bulk forms of the queue statements: one statement per batch, not per task.

-- name: enqueue_tasks
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
SELECT :workflow, :version, s.value, i.value, :priority, :now, :now
FROM json_each(:subjects) AS s JOIN json_each(:inputs) AS i ON i.key = s.key
WHERE NOT EXISTS (
    SELECT 1 FROM turing_tasks t WHERE t.workflow = :workflow AND t.subject = s.value
)
ON CONFLICT DO NOTHING;

-- name: enqueue_tasks_reprocess
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
SELECT :workflow, :version, s.value, i.value, :priority, :now, :now
FROM json_each(:subjects) AS s JOIN json_each(:inputs) AS i ON i.key = s.key
WHERE TRUE
ON CONFLICT DO NOTHING;

-- name: complete_tasks
UPDATE turing_tasks
SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, feedback = NULL,
    finished_at = :now, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'running' AND lease_owner = :owner
RETURNING id;

-- name: reserve_run_ids
-- Ids for the runs about to be written, so their calls and repairs go in bulk too. Only
-- inside a write transaction (BEGIN IMMEDIATE holds the lock: nobody else takes these).
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
SELECT i + MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'turing_runs'), 0),
               COALESCE((SELECT MAX(id) FROM turing_runs), 0)) AS id
FROM seq ORDER BY i;

-- name: insert_runs
INSERT INTO turing_runs (id, task_id, workflow, version, fingerprint, subject, status,
    error_kind, error, input, output, worker, started_at, finished_at, duration_ms, calls,
    reasks, repairs, input_tokens, output_tokens, cost, cached, retries)
VALUES (:id, :task_id, :workflow, :version, :fingerprint, :subject, :status, :error_kind,
    :error, :input, :output, :worker, :started_at, :finished_at, :duration_ms, :calls, :reasks,
    :repairs, :input_tokens, :output_tokens, :cost, :cached, :retries);

-- name: analyze_tasks
ANALYZE turing_tasks;

-- name: enqueue_task
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
SELECT :workflow, :version, :subject, :input, :priority, :now, :now
WHERE NOT EXISTS (
    SELECT 1 FROM turing_tasks t WHERE t.workflow = :workflow AND t.subject = :subject
)
ON CONFLICT DO NOTHING;

-- name: enqueue_task_reprocess
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
VALUES (:workflow, :version, :subject, :input, :priority, :now, :now)
ON CONFLICT DO NOTHING;
