-- Operations people run (CLI and dashboard alike): the review gate, cancel, pause, audit.
-- Every transition is guarded by the status it leaves, so two people (or a person and a
-- worker) acting on one task at once change it once.

-- name: hold_task
-- A finished run's output met the workflow's review condition: held, its sink not run.
UPDATE turing_tasks
SET status = 'review', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL,
    feedback = NULL, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: put_review
INSERT INTO turing_reviews (task_id, run_id, workflow, subject, output, reason, held_at)
VALUES (:task_id, :run_id, :workflow, :subject, :output, :reason, :now)
ON CONFLICT (task_id) DO UPDATE SET
    run_id = excluded.run_id, output = excluded.output, reason = excluded.reason,
    held_at = excluded.held_at;

-- name: list_reviews
SELECT r.task_id, r.run_id, r.workflow, r.subject, r.output, r.reason, r.held_at,
       t.version, t.attempts
FROM turing_reviews r JOIN turing_tasks t ON t.id = r.task_id
WHERE t.status = 'review' AND (:any_workflow OR r.workflow = ANY(:workflows)) AND r.task_id > :after
ORDER BY r.task_id
LIMIT :limit;

-- name: get_review
SELECT r.task_id, r.run_id, r.workflow, r.subject, r.output, r.reason, r.held_at,
       t.version, t.attempts, t.input, t.status
FROM turing_reviews r JOIN turing_tasks t ON t.id = r.task_id
WHERE r.task_id = :id;

-- name: approve_task
UPDATE turing_tasks
SET status = 'succeeded', last_error = NULL, finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'review'
RETURNING id, workflow, version, subject, input;

-- name: reject_task
UPDATE turing_tasks
SET status = 'failed', last_error = :error, finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'review';

-- name: reask_task
-- Back to the model with the reviewer's comment: pending again, the comment and the held
-- answer in `feedback` for the next run's first call.
UPDATE turing_tasks
SET status = 'pending', feedback = :feedback, not_before = NULL, finished_at = NULL,
    updated_at = :now
WHERE id = :id AND status = 'review';

-- name: drop_review
DELETE FROM turing_reviews WHERE task_id = :id;

-- name: cancel_tasks
-- Waiting tasks only (pending, retry-waiting, held for review): a running task finishes
-- under its lease, a task inside a provider batch is cancelled with its batch.
UPDATE turing_tasks
SET status = 'failed', last_error = :error, lease_owner = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now
WHERE id = ANY(:ids) AND status IN ('pending', 'review')
RETURNING id, workflow;

-- name: drop_reviews
DELETE FROM turing_reviews WHERE task_id IN (
    SELECT id FROM turing_tasks WHERE id = ANY(:ids) AND status <> 'review'
);

-- name: pause_workflow
INSERT INTO turing_paused (workflow, paused_by, reason, paused_at)
VALUES (:workflow, :who, :reason, :now)
ON CONFLICT (workflow) DO NOTHING;

-- name: resume_workflow
DELETE FROM turing_paused WHERE workflow = :workflow;

-- name: list_paused
SELECT workflow, paused_by, reason, paused_at FROM turing_paused ORDER BY workflow;

-- name: record_action
INSERT INTO turing_audit (at, who, action, workflow, task_id, detail)
VALUES (:now, :who, :action, :workflow, :task_id, :detail);

-- name: list_actions
SELECT id, at, who, action, workflow, task_id, detail FROM turing_audit
WHERE (CAST(:task_id AS BIGINT) IS NULL OR task_id = :task_id) AND id < :before
ORDER BY id DESC
LIMIT :limit;

-- name: requeue_task
-- Run a finished task again with the subject's current input (read from the source just
-- now): only its subject's newest task, and only while the subject has no open task.
UPDATE turing_tasks
SET status = 'pending', input = :input, not_before = NULL, finished_at = NULL,
    last_error = NULL, attempts = 0, updated_at = :now
WHERE id = :id AND status IN ('succeeded', 'failed')
  AND NOT EXISTS (
    SELECT 1 FROM turing_tasks o
    WHERE o.workflow = turing_tasks.workflow AND o.subject = turing_tasks.subject
      AND (o.status IN ('pending', 'running', 'review', 'submitted') OR o.id > turing_tasks.id)
  );
