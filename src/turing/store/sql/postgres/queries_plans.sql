-- Queue statements for plans: a plan step claims and watches only its own tasks.
-- claim_task_ids is claim_tasks with the id list as its filter, kept apart so each gets its
-- own access path (the id list here, the claim index there) instead of an OR on a parameter.

-- name: claim_task_ids
UPDATE turing_tasks
SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
    attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM turing_tasks
    WHERE status = 'pending' AND (not_before IS NULL OR not_before <= :now)
      AND id = ANY(:ids)
      AND workflow NOT IN (SELECT workflow FROM turing_paused)
    ORDER BY priority DESC, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
RETURNING id, workflow, version, subject, input, attempts, priority, feedback;

-- name: tasks_for_subjects
SELECT id, subject, status, not_before, last_error FROM turing_tasks
WHERE workflow = :workflow AND subject = ANY(:subjects)
ORDER BY id;

-- name: task_states
SELECT id, subject, status, not_before, last_error FROM turing_tasks
WHERE id = ANY(:ids)
ORDER BY id;

-- name: start_plan_run
INSERT INTO turing_plan_runs (goal, plan, status, worker, started_at)
VALUES (:goal, :plan, 'running', :worker, :now)
RETURNING id;

-- name: save_plan_step
INSERT INTO turing_plan_steps (plan_run, step, workflow, status, tasks, task_ids, reason, updated_at)
VALUES (:plan_run, :step, :workflow, :status, :tasks, :task_ids, :reason, :now)
ON CONFLICT (plan_run, step) DO UPDATE SET
    status = excluded.status, tasks = excluded.tasks, task_ids = excluded.task_ids,
    reason = excluded.reason, updated_at = excluded.updated_at;

-- name: finish_plan_run
UPDATE turing_plan_runs SET status = :status, finished_at = :now WHERE id = :id;

-- name: list_plan_runs
SELECT id, goal, status, worker, started_at, finished_at FROM turing_plan_runs
ORDER BY id DESC
LIMIT :limit;

-- name: get_plan_run
SELECT id, goal, plan, status, worker, started_at, finished_at FROM turing_plan_runs
WHERE id = :id;

-- name: plan_run_steps
SELECT step, workflow, status, tasks, task_ids, reason, updated_at FROM turing_plan_steps
WHERE plan_run = :plan_run;
