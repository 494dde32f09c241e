-- Turing's tables, current version, for a fresh SQLite database.
-- Must equal applying migrations/*.sql in order (tests/integration/test_migrations.py).
-- Registry: the database copy of workflows and their contracts.
CREATE TABLE turing_workflows (
    name             TEXT PRIMARY KEY,
    alias            INTEGER,
    description      TEXT NOT NULL DEFAULT '',
    version          INTEGER NOT NULL,
    fingerprint      TEXT NOT NULL,
    definition       TEXT NOT NULL,
    updated_at       REAL NOT NULL
);

CREATE TABLE turing_contracts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow     TEXT NOT NULL,
    role         TEXT NOT NULL,
    revision     INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    schema       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    UNIQUE (workflow, role, revision),
    UNIQUE (workflow, role, hash)
);

-- The queue: small rows, indexed for claiming. At most one open task per workflow and subject,
-- and one task per workflow, subject and version (a retry reuses the row).
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
CREATE UNIQUE INDEX turing_tasks_one_open ON turing_tasks (workflow, subject)
    WHERE status IN ('pending', 'running', 'review', 'submitted');
CREATE INDEX turing_tasks_claim ON turing_tasks (priority DESC, id)
    WHERE status = 'pending';
CREATE INDEX turing_tasks_leases ON turing_tasks (lease_expires_at)
    WHERE status = 'running';

-- History, apart from the queue: runs, the model calls of each run, and repairs.
CREATE TABLE turing_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         INTEGER,
    workflow        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    fingerprint     TEXT NOT NULL,
    subject         TEXT,
    status          TEXT NOT NULL,
    error_kind      TEXT,
    error           TEXT,
    input           TEXT NOT NULL,
    output          TEXT,
    worker          TEXT NOT NULL,
    started_at      REAL NOT NULL,
    finished_at     REAL NOT NULL,
    duration_ms     REAL NOT NULL,
    calls           INTEGER NOT NULL DEFAULT 0,
    reasks          INTEGER NOT NULL DEFAULT 0,
    repairs         INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0
    -- added by 0002 (written as SQLite stores an added column, so both paths compare equal)
, cost REAL NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX turing_runs_task ON turing_runs (task_id);
CREATE INDEX turing_runs_workflow ON turing_runs (workflow, status, finished_at);

CREATE TABLE turing_calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER NOT NULL REFERENCES turing_runs (id) ON DELETE CASCADE,
    step           TEXT NOT NULL,
    number         INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    messages       TEXT NOT NULL,
    raw            TEXT NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    latency_ms     REAL NOT NULL,
    violations     TEXT NOT NULL,
    error          TEXT
    -- added by 0002 (written as SQLite stores an added column, so both paths compare equal)
, cost REAL NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX turing_calls_run ON turing_calls (run_id);

CREATE TABLE turing_repairs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   INTEGER NOT NULL REFERENCES turing_runs (id) ON DELETE CASCADE,
    step     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    path     TEXT NOT NULL,
    before   TEXT NOT NULL,
    after    TEXT NOT NULL
);
CREATE INDEX turing_repairs_run ON turing_repairs (run_id);

-- The response cache (0002).
CREATE TABLE turing_cache (
    key            TEXT PRIMARY KEY,
    actor          TEXT NOT NULL,
    model          TEXT NOT NULL,
    response       TEXT NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    hits           INTEGER NOT NULL DEFAULT 0,
    last_hit_at    REAL
);
