-- 0011: plan runs and their steps (see schema_plans.sql).
CREATE TABLE turing_plan_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    goal         TEXT NOT NULL,
    plan         TEXT NOT NULL,
    status       TEXT NOT NULL,
    worker       TEXT NOT NULL,
    started_at   REAL NOT NULL,
    finished_at  REAL
);

CREATE TABLE turing_plan_steps (
    plan_run     INTEGER NOT NULL,
    step         TEXT NOT NULL,
    workflow     TEXT NOT NULL,
    status       TEXT NOT NULL,
    tasks        INTEGER NOT NULL DEFAULT 0,
    task_ids     TEXT NOT NULL DEFAULT '[]',
    reason       TEXT,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (plan_run, step)
);
