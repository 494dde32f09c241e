-- 0007: tasks held for review ('review') and inside a provider batch ('submitted') are open
-- (one open task per subject, never reclaimed); paused workflows, review items and an audit
-- log of what people did; `feedback` carries a reviewer's comment to the re-ask. SQLite cannot change a CHECK constraint in place: the table is
-- rebuilt with the same text as schema.sql (ids and the AUTOINCREMENT counter kept).
DROP INDEX turing_tasks_one_open;
DROP INDEX turing_tasks_claim;
DROP INDEX turing_tasks_leases;
ALTER TABLE turing_tasks RENAME TO turing_tasks_0006;
CREATE TABLE turing_tasks (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow          TEXT NOT NULL,
    version           INTEGER NOT NULL,
    subject           TEXT NOT NULL,
    input             TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'succeeded', 'failed',
                                        'review', 'submitted')),
    priority          INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    not_before        REAL,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    last_error        TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    finished_at       REAL,
    feedback          TEXT,
    UNIQUE (workflow, subject, version)
);
INSERT INTO turing_tasks (id, workflow, version, subject, input, status, priority, attempts, not_before, lease_owner,
    lease_expires_at, last_error, created_at, updated_at, finished_at)
SELECT id, workflow, version, subject, input, status, priority, attempts, not_before, lease_owner,
    lease_expires_at, last_error, created_at, updated_at, finished_at
FROM turing_tasks_0006;
DELETE FROM sqlite_sequence WHERE name = 'turing_tasks';
UPDATE sqlite_sequence SET name = 'turing_tasks' WHERE name = 'turing_tasks_0006';
DROP TABLE turing_tasks_0006;
CREATE UNIQUE INDEX turing_tasks_one_open ON turing_tasks (workflow, subject)
    WHERE status IN ('pending', 'running', 'review', 'submitted');
CREATE INDEX turing_tasks_claim ON turing_tasks (priority DESC, id)
    WHERE status = 'pending';
CREATE INDEX turing_tasks_leases ON turing_tasks (lease_expires_at)
    WHERE status = 'running';

-- Operations: paused workflows, tasks held for review, and what people did (review
-- decisions, retries, cancels, pauses), written by the CLI and the dashboard alike.
CREATE TABLE turing_paused (
    workflow    TEXT PRIMARY KEY,
    paused_by   TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    paused_at   REAL NOT NULL
);

-- One row per task held for review: the validated output as held, and why.
CREATE TABLE turing_reviews (
    task_id     INTEGER PRIMARY KEY,
    run_id      INTEGER,
    workflow    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    output      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    held_at     REAL NOT NULL
);
CREATE INDEX turing_reviews_workflow ON turing_reviews (workflow, held_at);

CREATE TABLE turing_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    who         TEXT NOT NULL,
    action      TEXT NOT NULL,
    workflow    TEXT,
    task_id     INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX turing_audit_task ON turing_audit (task_id);
