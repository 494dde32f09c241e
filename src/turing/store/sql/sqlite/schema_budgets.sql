-- Budgets per calendar period (turing.limits.spending): what each budget's period spent, and
-- the reservations of calls in flight (held until settled, or until they expire: a crashed
-- worker's holds stop counting after their expiry).
CREATE TABLE turing_budget_periods (
    key          TEXT NOT NULL,
    period_start REAL NOT NULL,
    spent        REAL NOT NULL,
    PRIMARY KEY (key, period_start)
);

CREATE TABLE turing_budget_holds (
    permit       TEXT NOT NULL,
    key          TEXT NOT NULL,
    period_start REAL NOT NULL,
    amount       REAL NOT NULL,
    holder       TEXT NOT NULL,
    expires_at   REAL NOT NULL,
    PRIMARY KEY (permit, key)
);

CREATE INDEX turing_budget_holds_live ON turing_budget_holds (key, period_start, expires_at);
