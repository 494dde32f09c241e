-- Bulk forms of the queue statements: one statement per batch, not per task.

-- name: enqueue_tasks
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
SELECT :workflow, :version, u.subject, u.input, :priority, :now, :now
FROM unnest(CAST(:subjects AS text[]), CAST(:inputs AS text[])) AS u (subject, input)
WHERE NOT EXISTS (
    SELECT 1 FROM turing_tasks t WHERE t.workflow = :workflow AND t.subject = u.subject
)
ON CONFLICT DO NOTHING;

-- name: enqueue_tasks_reprocess
INSERT INTO turing_tasks (workflow, version, subject, input, priority, created_at, updated_at)
SELECT :workflow, :version, u.subject, u.input, :priority, :now, :now
FROM unnest(CAST(:subjects AS text[]), CAST(:inputs AS text[])) AS u (subject, input)
WHERE TRUE
ON CONFLICT DO NOTHING;

-- name: complete_tasks
UPDATE turing_tasks
SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, feedback = NULL,
    finished_at = :now, updated_at = :now
WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'running' AND lease_owner = :owner
RETURNING id;

-- name: reserve_run_ids
-- Ids for the runs about to be written, so their calls and repairs go in bulk too.
SELECT nextval(pg_get_serial_sequence('turing_runs', 'id')) AS id
FROM generate_series(1, :n) ORDER BY 1;

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
