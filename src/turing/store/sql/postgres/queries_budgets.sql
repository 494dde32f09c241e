-- Budgets per calendar period (turing.limits.spending). Same names as sqlite/queries_budgets.sql.
-- A reservation locks each budget's period row (FOR UPDATE, in key order: no deadlock between
-- two reservations of overlapping budgets), so spent + held + the new hold is checked and
-- written under the lock by one worker at a time.

-- name: budget_ensure
INSERT INTO turing_budget_periods (key, period_start, spent)
VALUES (:key, :period_start, 0) ON CONFLICT DO NOTHING;

-- name: budget_lock
SELECT spent FROM turing_budget_periods
WHERE key = :key AND period_start = :period_start
FOR UPDATE;

-- name: budget_prune_holds
DELETE FROM turing_budget_holds WHERE key = :key AND expires_at <= :now;

-- name: budget_held
SELECT COALESCE(SUM(amount), 0) AS held FROM turing_budget_holds
WHERE key = :key AND period_start = :period_start AND expires_at > :now;

-- name: budget_hold
INSERT INTO turing_budget_holds (permit, key, period_start, amount, holder, expires_at)
VALUES (:permit, :key, :period_start, :amount, :holder, :expires_at);

-- name: budget_release
DELETE FROM turing_budget_holds WHERE permit = :permit;

-- name: budget_spend
UPDATE turing_budget_periods SET spent = spent + :amount
WHERE key = :key AND period_start = :period_start;

-- name: budget_release_holder
DELETE FROM turing_budget_holds WHERE holder = :holder;

-- name: budget_state
-- What a budget's period spent and holds now (no row: nothing spent yet).
SELECT COALESCE((SELECT spent FROM turing_budget_periods
                 WHERE key = :key AND period_start = :period_start), 0) AS spent,
       COALESCE((SELECT SUM(amount) FROM turing_budget_holds
                 WHERE key = :key AND period_start = :period_start
                   AND expires_at > :now), 0) AS held;
