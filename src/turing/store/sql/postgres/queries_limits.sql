-- Shared limits (turing.limits). Same names as sqlite/queries_limits.sql.
-- `limit_lock` takes the lock rows in key order (FOR UPDATE after ORDER BY), so two
-- acquisitions of overlapping key sets cannot deadlock; disjoint key sets never wait.

-- name: limit_ensure
INSERT INTO turing_limits (key, created_at) VALUES (:key, :now) ON CONFLICT DO NOTHING;

-- name: limit_lock
SELECT key FROM turing_limits
WHERE key = ANY(CAST(:keys AS text[]))
ORDER BY key
FOR UPDATE;

-- name: limit_usage
-- One row per key: grants in the window of each rate key (keys and cutoffs are parallel
-- lists) with the latest grant ever; live slots of each concurrency key, earliest expiry.
SELECT w.key, COALESCE(SUM(g.amount), 0) AS used, NULL AS first_expiry,
       (SELECT MAX(m.granted_at) FROM turing_limit_grants m WHERE m.key = w.key) AS latest
FROM unnest(CAST(:rate_keys AS text[]), CAST(:cutoffs AS double precision[])) AS w (key, cutoff)
LEFT JOIN turing_limit_grants g ON g.key = w.key AND g.granted_at > w.cutoff
GROUP BY w.key
UNION ALL
SELECT key, COUNT(*), MIN(expires_at), NULL FROM turing_limit_slots
WHERE key = ANY(CAST(:slot_keys AS text[])) AND expires_at > :now
GROUP BY key;

-- name: limit_prune_grants
-- The keys and cutoffs are parallel lists: a grant at or before its key's cutoff has left the window.
DELETE FROM turing_limit_grants g
USING unnest(CAST(:keys AS text[]), CAST(:cutoffs AS double precision[])) AS w (key, cutoff)
WHERE g.key = w.key AND g.granted_at <= w.cutoff;

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
WHERE key = ANY(CAST(:keys AS text[])) AND granted_at = :granted_at
  AND permit = :permit;

-- name: limit_prune_slots
DELETE FROM turing_limit_slots
WHERE key = ANY(CAST(:keys AS text[])) AND expires_at <= :now;

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
