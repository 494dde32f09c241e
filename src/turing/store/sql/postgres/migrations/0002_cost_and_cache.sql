-- 0002: cost, cache hits and retries in history; the response cache.
ALTER TABLE turing_runs ADD COLUMN cost DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE turing_runs ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turing_runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turing_calls ADD COLUMN cost DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE turing_calls ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turing_calls ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

CREATE TABLE turing_cache (
    key            TEXT PRIMARY KEY,
    actor          TEXT NOT NULL,
    model          TEXT NOT NULL,
    response       TEXT NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    created_at     DOUBLE PRECISION NOT NULL,
    hits           INTEGER NOT NULL DEFAULT 0,
    last_hit_at    DOUBLE PRECISION
);
