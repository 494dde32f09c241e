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
      AND id IN (SELECT value FROM json_each(:ids))
      AND workflow NOT IN (SELECT workflow FROM turing_paused)
    ORDER BY priority DESC, id
    LIMIT :limit
)
RETURNING id, workflow, version, subject, input, attempts, priority, feedback;

-- name: tasks_for_subjects
SELECT id, subject, status, not_before, last_error FROM turing_tasks
WHERE workflow = :workflow AND subject IN (SELECT value FROM json_each(:subjects))
ORDER BY id;

-- name: task_states
SELECT id, subject, status, not_before, last_error FROM turing_tasks
WHERE id IN (SELECT value FROM json_each(:ids))
ORDER BY id;
