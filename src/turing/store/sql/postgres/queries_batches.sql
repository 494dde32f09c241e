-- Provider batches (turing.batch, run from turing.store.batches).

-- name: batch_insert
INSERT INTO turing_batches (actor, provider, idempotency_key, status, requests, owner,
    budget_hold, created_at)
VALUES (:actor, :provider, :key, 'submitting', :requests, :owner, :budget_hold, :now)
RETURNING id;

-- name: batch_item_insert
INSERT INTO turing_batch_items (batch_id, task_id, attempt, round, custom_id, request_hash,
    since)
VALUES (:batch_id, :task_id, :attempt, :round, :custom_id, :request_hash, :since);

-- name: batch_tasks_submit
-- Claimed tasks into the batch, guarded by status and owner: a task whose lease was lost
-- is not submitted (its id does not come back).
UPDATE turing_tasks
SET status = 'submitted', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE status = 'running' AND lease_owner = :owner
  AND id = ANY(:ids)
RETURNING id;

-- name: batch_set_submitted
UPDATE turing_batches
SET status = 'submitted', provider_batch_id = :provider_batch_id, submitted_at = :now,
    expires_at = :expires_at, provider_status = :provider_status
WHERE id = :id AND status = 'submitting';

-- name: batch_set_requests
UPDATE turing_batches SET requests = :requests WHERE id = :id;

-- name: batch_get
SELECT * FROM turing_batches WHERE id = :id;

-- name: batch_list
SELECT * FROM turing_batches
WHERE (NOT :open_only OR status IN ('submitting', 'submitted'))
ORDER BY id DESC
LIMIT :limit;

-- name: batch_item_counts
SELECT batch_id, state, COUNT(*) AS n FROM turing_batch_items
WHERE batch_id = ANY(:ids)
GROUP BY batch_id, state;

-- name: batch_items
SELECT * FROM turing_batch_items WHERE batch_id = :batch_id ORDER BY id;

-- name: batch_polled
UPDATE turing_batches
SET provider_status = :provider_status, succeeded = :succeeded, errored = :errored,
    polled_at = :now
WHERE id = :id;

-- name: batch_finish
UPDATE turing_batches
SET status = :status, error = COALESCE(:error, error), finished_at = :now
WHERE id = :id AND status IN ('submitting', 'submitted');

-- name: batch_items_take
-- An ingesting worker takes items (and, below, their tasks): an item taken by another
-- worker is skipped, so each answer is ingested once.
UPDATE turing_batch_items SET state = 'ingesting'
WHERE state = 'submitted' AND id IN (
    SELECT id FROM turing_batch_items
    WHERE batch_id = :batch_id AND state = 'submitted'
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: batch_tasks_take
UPDATE turing_tasks
SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
    updated_at = :now
WHERE status = 'submitted' AND id = ANY(:ids)
RETURNING id, workflow, version, subject, input, attempts, priority;

-- name: batch_item_state
UPDATE turing_batch_items
SET state = :state, answer = COALESCE(:answer, answer),
    input_tokens = :input_tokens, output_tokens = :output_tokens, error = :error
WHERE id = :id AND state = :from_state;

-- name: batch_task_return
-- A task whose request got no answer (expired, cancelled, taken back) is pending again,
-- its attempt not counted.
UPDATE turing_tasks
SET status = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE id = :id AND status = :from_status AND (CAST(:owner AS TEXT) IS NULL OR lease_owner = :owner);

-- name: batch_chain
-- The earlier answers of one attempt that were re-asked (in round order).
SELECT round, answer, request_hash, input_tokens, output_tokens, since, batch_id
FROM turing_batch_items
WHERE task_id = :task_id AND attempt = :attempt AND state = 'reask'
ORDER BY round;

-- name: batch_usage
-- What a batch's answers used per workflow (the items that got one), to settle its budget
-- holds.
SELECT t.workflow, COALESCE(SUM(i.input_tokens), 0) AS input_tokens,
       COALESCE(SUM(i.output_tokens), 0) AS output_tokens
FROM turing_batch_items i JOIN turing_tasks t ON t.id = i.task_id
WHERE i.batch_id = :batch_id
GROUP BY t.workflow;

-- name: batch_drop_chain
-- A re-ask chain that no longer fits its workflow (edited since): the task starts afresh.
UPDATE turing_batch_items SET state = 'stale'
WHERE task_id = :task_id AND attempt = :attempt AND state = 'reask';

-- name: batch_pending
-- Claimable tasks per workflow and the oldest one's age (batch = "auto" decides by them).
SELECT workflow, COUNT(*) AS n, MIN(updated_at) AS oldest
FROM turing_tasks
WHERE status = 'pending' AND (not_before IS NULL OR not_before <= :now)
  AND workflow = ANY(:workflows)
GROUP BY workflow;

-- name: batch_costs
-- Calls answered through provider batches in a window of history, per actor (turing stats
-- shows them apart: their cost is at the batch rate).
SELECT c.actor, COUNT(*) AS calls, SUM(c.input_tokens) AS input_tokens,
       SUM(c.output_tokens) AS output_tokens, SUM(c.cost) AS cost,
       COUNT(DISTINCT c.batch_id) AS batches
FROM turing_calls c JOIN turing_runs r ON r.id = c.run_id
WHERE c.batch_id IS NOT NULL AND r.finished_at >= :since AND r.finished_at <= :until
  AND (:any_workflow OR r.workflow = ANY(:workflows))
GROUP BY c.actor
ORDER BY c.actor;
