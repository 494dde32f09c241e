-- Named queries for SQLite. Same names as postgres/queries.sql (a test checks it).
-- Parameters are written :name; list parameters arrive as JSON text (json_each).

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS turing_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
);

-- name: applied_migrations
SELECT version FROM turing_migrations ORDER BY version;

-- name: record_migration
INSERT INTO turing_migrations (version, name, applied_at) VALUES (:version, :name, :now);

-- name: lock_migrations
SELECT 1;

-- name: get_workflow
SELECT name, alias, description, version, fingerprint, definition, updated_at
FROM turing_workflows WHERE name = :name;

-- name: list_registry
SELECT name, alias, description, version, fingerprint, definition, updated_at
FROM turing_workflows ORDER BY name;

-- name: upsert_workflow
INSERT INTO turing_workflows (name, alias, description, version, fingerprint, definition, updated_at)
VALUES (:name, :alias, :description, :version, :fingerprint, :definition, :now)
ON CONFLICT (name) DO UPDATE SET
    alias = excluded.alias, description = excluded.description, version = excluded.version,
    fingerprint = excluded.fingerprint, definition = excluded.definition,
    updated_at = excluded.updated_at;

-- name: latest_contract
SELECT revision, version, hash, schema, created_at FROM turing_contracts
WHERE workflow = :workflow AND role = :role ORDER BY revision DESC LIMIT 1;

-- name: list_contracts
SELECT workflow, role, revision, version, hash, created_at FROM turing_contracts
ORDER BY workflow, role, revision;

-- name: insert_contract
-- One row per distinct content: a contract changed back to an earlier content moves that
-- row to the new (latest) revision instead of violating UNIQUE (workflow, role, hash).
INSERT INTO turing_contracts (workflow, role, revision, version, hash, schema, created_at)
VALUES (:workflow, :role, :revision, :version, :hash, :schema, :now)
ON CONFLICT (workflow, role, hash) DO UPDATE SET
    revision = excluded.revision, version = excluded.version, created_at = excluded.created_at;

-- name: db_now
-- The database's clock: leases are computed from it inside the claiming transaction (after
-- BEGIN IMMEDIATE took the write lock), so a claim that waited never commits an old lease.
SELECT (julianday('now') - 2440587.5) * 86400.0 AS now;

-- name: set_lock_timeout
-- SQLite has no row locks: the busy timeout bounds every wait. Same name as PostgreSQL's.
SELECT :timeout AS lock_timeout;

-- name: reclaim_expired
-- One writer at a time: nothing to skip (a frozen writer holds the whole database).
UPDATE turing_tasks
SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now,
    last_error = 'lease expired (worker ' || COALESCE(lease_owner, '?') || ' stopped answering)'
WHERE status = 'running' AND lease_expires_at < :now;

-- name: claim_tasks
-- A paused workflow's tasks stay pending: no worker claims them until it is resumed.
UPDATE turing_tasks
SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
    attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM turing_tasks
    WHERE status = 'pending' AND (not_before IS NULL OR not_before <= :now)
      AND (:any_workflow = 1 OR workflow IN (SELECT value FROM json_each(:workflows)))
      AND workflow NOT IN (SELECT workflow FROM turing_paused)
    ORDER BY priority DESC, id
    LIMIT :limit
)
RETURNING id, workflow, version, subject, input, attempts, priority, feedback;

-- name: complete_task
UPDATE turing_tasks
SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, feedback = NULL,
    finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: fail_task
UPDATE turing_tasks
SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, last_error = :error,
    finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: release_task
UPDATE turing_tasks
SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now,
    attempts = attempts - 1
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: retry_task
-- Not while the subject has another open task (e.g. of a newer version): at most one open.
UPDATE turing_tasks
SET status = 'pending', not_before = NULL, finished_at = NULL, updated_at = :now
WHERE id = :id AND status = 'failed'
  AND NOT EXISTS (
    SELECT 1 FROM turing_tasks o
    WHERE o.workflow = turing_tasks.workflow AND o.subject = turing_tasks.subject
      AND o.status IN ('pending', 'running', 'review', 'submitted')
  );

-- name: retry_failed
-- Only a failed task that is its subject's newest (a newer version's task, whatever its
-- status, supersedes it), and only if the subject has no open task.
UPDATE turing_tasks
SET status = 'pending', not_before = NULL, finished_at = NULL, updated_at = :now
WHERE status = 'failed'
  AND (:any_workflow = 1 OR workflow IN (SELECT value FROM json_each(:workflows)))
  AND NOT EXISTS (
    SELECT 1 FROM turing_tasks o
    WHERE o.workflow = turing_tasks.workflow AND o.subject = turing_tasks.subject
      AND (o.status IN ('pending', 'running', 'review', 'submitted') OR o.id > turing_tasks.id)
  );

-- name: get_task
SELECT id, workflow, version, subject, input, status, priority, attempts, not_before,
       lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at
FROM turing_tasks WHERE id = :id;

-- name: queue_counts
SELECT workflow, status, COUNT(*) AS n FROM turing_tasks GROUP BY workflow, status
ORDER BY workflow, status;

-- name: insert_call
INSERT INTO turing_calls (run_id, step, number, actor, messages, raw, input_tokens,
    output_tokens, latency_ms, violations, error, cost, cached, retries, batch_id)
VALUES (:run_id, :step, :number, :actor, :messages, :raw, :input_tokens, :output_tokens,
    :latency_ms, :violations, :error, :cost, :cached, :retries, :batch_id);

-- name: insert_repair
INSERT INTO turing_repairs (run_id, step, kind, path, before, after)
VALUES (:run_id, :step, :kind, :path, :before, :after);

-- name: list_runs
SELECT id, task_id, workflow, version, subject, status, error_kind, error, started_at,
       duration_ms, calls, reasks, repairs, input_tokens, output_tokens, cost, cached, retries,
       fingerprint
FROM turing_runs
WHERE (:any_workflow = 1 OR workflow IN (SELECT value FROM json_each(:workflows)))
  AND (:failed_only = 0 OR status = 'failed')
ORDER BY id DESC
LIMIT :limit;

-- name: get_run
SELECT id, task_id, workflow, version, fingerprint, subject, status, error_kind, error, input,
       output, worker, started_at, finished_at, duration_ms, calls, reasks, repairs,
       input_tokens, output_tokens, cost, cached, retries
FROM turing_runs WHERE id = :id;

-- name: run_calls
SELECT step, number, actor, messages, raw, input_tokens, output_tokens, latency_ms,
       violations, error, cost, cached, retries
FROM turing_calls WHERE run_id = :run_id ORDER BY id;

-- name: run_repairs
SELECT step, kind, path, before, after FROM turing_repairs WHERE run_id = :run_id ORDER BY id;

-- name: task_subjects
SELECT subject FROM turing_tasks WHERE workflow = :workflow;

-- name: pending_tasks
SELECT id, workflow, version, subject, input, attempts, priority FROM turing_tasks
WHERE status = 'pending' AND workflow = :workflow
ORDER BY priority DESC, id
LIMIT :limit;

-- name: cache_get
SELECT response, input_tokens, output_tokens FROM turing_cache WHERE key = :key;

-- name: cache_put
INSERT INTO turing_cache (key, actor, model, response, input_tokens, output_tokens, created_at)
VALUES (:key, :actor, :model, :response, :input_tokens, :output_tokens, :now)
ON CONFLICT (key) DO NOTHING;

-- name: cache_hit
UPDATE turing_cache SET hits = hits + 1, last_hit_at = :now WHERE key = :key;

-- name: retry_later
UPDATE turing_tasks
SET status = 'pending', not_before = :not_before, lease_owner = NULL, lease_expires_at = NULL,
    last_error = :error, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: defer_task
-- The database failed while the task ran or completed: back to pending from `not_before`,
-- the attempt not counted (the fault was not the task's).
UPDATE turing_tasks
SET status = 'pending', not_before = :not_before, lease_owner = NULL, lease_expires_at = NULL,
    attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, last_error = :error,
    updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner;

-- name: queue_overview
-- Why nothing was claimable: what the queue holds, by what it waits for (the database clock).
SELECT
    COALESCE(SUM(CASE WHEN status = 'pending' AND (not_before IS NULL OR not_before <= :now)
        THEN 1 ELSE 0 END), 0) AS pending,
    COALESCE(SUM(CASE WHEN status = 'pending' AND not_before > :now THEN 1 ELSE 0 END), 0)
        AS waiting_retry,
    COALESCE(SUM(CASE WHEN status = 'running' AND lease_expires_at >= :now THEN 1 ELSE 0 END), 0)
        AS running,
    COALESCE(SUM(CASE WHEN status = 'running' AND (lease_expires_at IS NULL
        OR lease_expires_at < :now) THEN 1 ELSE 0 END), 0) AS expired,
    COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
    COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded,
    COALESCE(SUM(CASE WHEN status = 'review' THEN 1 ELSE 0 END), 0) AS review,
    COALESCE(SUM(CASE WHEN status = 'submitted' THEN 1 ELSE 0 END), 0) AS submitted,
    MIN(CASE WHEN status = 'pending' AND not_before > :now THEN not_before END) AS next_retry_at,
    MAX(CASE WHEN status = 'running' THEN lease_expires_at END) AS last_lease_expiry
FROM turing_tasks
WHERE (:any_workflow = 1 OR workflow IN (SELECT value FROM json_each(:workflows)));

-- name: retryable_failed
-- The failed tasks `turing retry` may requeue: each its subject's newest, with no open task.
SELECT t.id, t.workflow, t.version, t.subject, t.input, t.attempts, t.priority
FROM turing_tasks t
WHERE t.status = 'failed'
  AND (:any_workflow = 1 OR t.workflow IN (SELECT value FROM json_each(:workflows)))
  AND (:any_id = 1 OR t.id = :id)
  AND NOT EXISTS (
    SELECT 1 FROM turing_tasks o
    WHERE o.workflow = t.workflow AND o.subject = t.subject
      AND (o.status IN ('pending', 'running', 'review', 'submitted') OR o.id > t.id)
  )
ORDER BY t.id;

-- name: requeue_failed
-- Back to pending with the subject's current input (read from the source just now).
UPDATE turing_tasks
SET status = 'pending', input = :input, not_before = NULL, finished_at = NULL,
    updated_at = :now
WHERE id = :id AND status = 'failed';

-- name: drop_failed
-- The source no longer returns the subject: nothing is left to do for it.
DELETE FROM turing_tasks WHERE id = :id AND status = 'failed';
