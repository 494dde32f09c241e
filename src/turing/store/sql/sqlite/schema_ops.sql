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
