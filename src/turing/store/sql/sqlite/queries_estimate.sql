-- History for `turing estimate` (turing.estimate): per LLM step of a workflow, the finished
-- runs' calls and tokens (cache hits left out: they cost nothing), by fingerprint or over
-- every version of the workflow (fingerprint ''). Runs that were deferred (no room in a
-- budget, an open circuit, our database failing) made no call of their own: left out.

-- name: estimate_runs
SELECT COUNT(*) AS runs FROM turing_runs
WHERE workflow = :workflow AND status IN ('succeeded', 'failed')
  AND COALESCE(error_kind, '') NOT IN ('budget_wait', 'budget_stop', 'circuit_open', 'store')
  AND (:fingerprint = '' OR fingerprint = :fingerprint);

-- name: estimate_calls
SELECT c.step AS step, COUNT(*) AS calls,
       COALESCE(SUM(c.input_tokens), 0) AS input_tokens,
       COALESCE(SUM(c.output_tokens), 0) AS output_tokens
FROM turing_runs r JOIN turing_calls c ON c.run_id = r.id
WHERE r.workflow = :workflow AND r.status IN ('succeeded', 'failed') AND c.cached = 0
  AND COALESCE(r.error_kind, '') NOT IN ('budget_wait', 'budget_stop', 'circuit_open', 'store')
  AND (:fingerprint = '' OR r.fingerprint = :fingerprint)
GROUP BY c.step;
