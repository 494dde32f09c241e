-- The dashboard (0010): processes that beat (workers and runs), one row each, renewed by
-- their lease heartbeat; and indexes that let the task list page newest first under any
-- filter without scanning (keyset on id, never OFFSET), and search subjects by prefix.
CREATE TABLE turing_workers (
    worker      TEXT PRIMARY KEY,
    started_at  DOUBLE PRECISION NOT NULL,
    beat_at     DOUBLE PRECISION NOT NULL,
    lease_s     DOUBLE PRECISION NOT NULL,
    held        INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX turing_tasks_by_status ON turing_tasks (status, id);

CREATE INDEX turing_tasks_by_workflow ON turing_tasks (workflow, status, id);

CREATE INDEX turing_tasks_subject ON turing_tasks (subject text_pattern_ops);
