-- Schedules (0004): one row per fired tick; the primary key makes a tick fire exactly once
-- however many workers try (INSERT ... ON CONFLICT DO NOTHING, the one that inserted runs it).
CREATE TABLE turing_schedule_ticks (
    schedule     TEXT NOT NULL,
    tick_at      DOUBLE PRECISION NOT NULL,
    worker       TEXT NOT NULL,
    fired_at     DOUBLE PRECISION NOT NULL,
    finished_at  DOUBLE PRECISION,
    tasks        INTEGER,
    error        TEXT,
    PRIMARY KEY (schedule, tick_at)
);
-- History by time, for turing stats and turing prune (0004).
CREATE INDEX turing_runs_finished ON turing_runs (finished_at);
