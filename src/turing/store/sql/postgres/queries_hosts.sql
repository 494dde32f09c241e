-- Shared model hosts (turing.actors.shared_host). Same names as sqlite/queries_hosts.sql.
-- `host_phase_lock` takes the host row FOR UPDATE: one sync of a host at a time.

-- name: host_phase_ensure
INSERT INTO turing_host_phases (host, models, changed_at) VALUES (:host, '[]', :now)
ON CONFLICT DO NOTHING;

-- name: host_phase_lock
SELECT models, changed_at FROM turing_host_phases WHERE host = :host FOR UPDATE;

-- name: host_phase_update
UPDATE turing_host_phases SET models = :models, changed_at = :now WHERE host = :host;

-- name: host_demand_clear
DELETE FROM turing_host_demand WHERE host = :host AND holder = :holder;

-- name: host_demand_insert
INSERT INTO turing_host_demand
    (host, holder, model, in_flight, queued, waiting_since, updated_at, expires_at)
VALUES (:host, :holder, :model, :in_flight, :queued, :waiting_since, :now, :expires_at);

-- name: host_demand_prune
DELETE FROM turing_host_demand WHERE host = :host AND expires_at <= :now;

-- name: host_demand_live
SELECT holder, model, in_flight, queued, waiting_since, updated_at FROM turing_host_demand
WHERE host = :host AND expires_at > :now
ORDER BY holder, model;

-- name: host_demand_release_holder
DELETE FROM turing_host_demand WHERE holder = :holder;
