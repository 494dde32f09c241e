-- Shared model hosts (turing.actors.shared_host): one row per host with its model phase
-- (the models being served, JSON [[model, joined_at, closed_at or null], ...]; also the lock
-- row), and the demand each live process has for each model on it (calls in flight and
-- queued), kept under an expiry that its syncs renew, so a dead process never holds a host.
CREATE TABLE turing_host_phases (
    host         TEXT PRIMARY KEY,
    models       TEXT NOT NULL,
    changed_at   REAL NOT NULL
);

CREATE TABLE turing_host_demand (
    host          TEXT NOT NULL,
    holder        TEXT NOT NULL,
    model         TEXT NOT NULL,
    in_flight     INTEGER NOT NULL,
    queued        INTEGER NOT NULL,
    waiting_since REAL,
    updated_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    PRIMARY KEY (host, holder, model)
);
