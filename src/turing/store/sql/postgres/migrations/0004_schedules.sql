-- 0004: schedule ticks (each tick fires once, whichever worker wins the insert) and an index
-- on run history by time (turing stats and turing prune read and trim it by finished_at).
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
CREATE INDEX turing_runs_finished ON turing_runs (finished_at);
