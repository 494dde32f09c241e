-- Shared limits (turing.limits): one lock row per limit, the recent grants of rate limits
-- (pruned as they leave their window) and the slots of concurrency limits (held under an expiry).
CREATE TABLE turing_limits (
    key          TEXT PRIMARY KEY,
    created_at   REAL NOT NULL
);

CREATE TABLE turing_limit_grants (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL,
    permit       TEXT NOT NULL,
    granted_at   REAL NOT NULL,
    amount       INTEGER NOT NULL
);

CREATE INDEX turing_limit_grants_window ON turing_limit_grants (key, granted_at);

CREATE TABLE turing_limit_slots (
    permit       TEXT NOT NULL,
    key          TEXT NOT NULL,
    holder       TEXT NOT NULL,
    expires_at   REAL NOT NULL,
    PRIMARY KEY (permit, key)
);

CREATE INDEX turing_limit_slots_live ON turing_limit_slots (key, expires_at);

CREATE INDEX turing_limit_slots_holder ON turing_limit_slots (holder);
