-- Shared limits (turing.limits). Same names as postgres/queries_limits.sql.
-- SQLite serialises writers (BEGIN IMMEDIATE), so `limit_lock` only reads the rows back.

-- name: limit_ensure
INSERT INTO turing_limits (key, created_at) VALUES (:key, :now) ON CONFLICT DO NOTHING;

-- name: limit_lock
SELECT key FROM turing_limits
WHERE key IN (SELECT value FROM json_each(:keys))
ORDER BY key;

-- name: limit_usage
-- One row per key: grants in the window of each rate key (keys and cutoffs are parallel
-- lists) with the latest grant ever; live slots of each concurrency key, earliest expiry.
SELECT k.value AS key, COALESCE(SUM(g.amount), 0) AS used, NULL AS first_expiry,
       (SELECT MAX(m.granted_at) FROM turing_limit_grants m WHERE m.key = k.value) AS latest
FROM json_each(:rate_keys) k
JOIN json_each(:cutoffs) c ON c.key = k.key
LEFT JOIN turing_limit_grants g ON g.key = k.value AND g.granted_at > c.value
GROUP BY k.value
UNION ALL
SELECT key, COUNT(*), MIN(expires_at), NULL FROM turing_limit_slots
WHERE key IN (SELECT value FROM json_each(:slot_keys)) AND expires_at > :now
GROUP BY key;

-- name: limit_prune_grants
-- The keys and cutoffs are parallel lists: a grant at or before its key's cutoff has left the window.
DELETE FROM turing_limit_grants
WHERE id IN (
    SELECT g.id FROM json_each(:keys) k
    JOIN json_each(:cutoffs) c ON c.key = k.key
    JOIN turing_limit_grants g ON g.key = k.value AND g.granted_at <= c.value
);

-- name: limit_grant_frees_at
-- The earliest grant in the window whose leaving frees at least the excess.
SELECT granted_at FROM (
    SELECT granted_at, SUM(amount) OVER (
        ORDER BY granted_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS freed
    FROM turing_limit_grants WHERE key = :key AND granted_at > :cutoff
) AS w
WHERE freed >= :excess
ORDER BY granted_at LIMIT 1;

-- name: limit_insert_grant
INSERT INTO turing_limit_grants (key, permit, granted_at, amount)
VALUES (:key, :permit, :granted_at, :amount);

-- name: limit_settle
UPDATE turing_limit_grants SET amount = :amount
WHERE key IN (SELECT value FROM json_each(:keys)) AND granted_at = :granted_at
  AND permit = :permit;

-- name: limit_prune_slots
DELETE FROM turing_limit_slots
WHERE key IN (SELECT value FROM json_each(:keys)) AND expires_at <= :now;

-- name: limit_insert_slot
INSERT INTO turing_limit_slots (permit, key, holder, expires_at)
VALUES (:permit, :key, :holder, :expires_at);

-- name: limit_release_slots
DELETE FROM turing_limit_slots WHERE permit = :permit;

-- name: limit_release_holder
DELETE FROM turing_limit_slots WHERE holder = :holder;

-- name: limit_heartbeat
-- Only live slots are renewed: an expired one may already be counted as free by others.
UPDATE turing_limit_slots SET expires_at = :expires_at
WHERE holder = :holder AND expires_at > :now;
