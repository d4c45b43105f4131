-- name: create_tenant
INSERT INTO tenants (id, name, domain, city, region, active, org_id)
VALUES (coalesce(%(id)s, gen_random_uuid()), %(name)s, %(domain)s, %(city)s, %(region)s,
        %(active)s, %(org_id)s)
RETURNING id, name, domain, city, region, active, created_at, updated_at, org_id;

-- name: list_tenants
SELECT id, name, domain, city, region, active, created_at, updated_at, org_id
FROM tenants
WHERE (%(tenant_id)s::uuid IS NULL OR id = %(tenant_id)s::uuid)
  AND (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s::uuid)
  AND (NOT %(unassigned)s OR org_id IS NULL)
ORDER BY name, id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: change_tenant
-- Rename or (de)activate a tenant; NULL leaves a field as it is. The old values come back
-- too, for the audit trail. No row for an unknown tenant (under RLS: one not the caller's).
-- An inactive tenant's waiting job is cancelled (deleted, as the console's cancel does) in
-- the same statement: the cron leaves it out and the API refuses it new jobs, and the job
-- already waiting would otherwise still recompute it and raise its alerts.
WITH changed AS (
    UPDATE tenants t
       SET name = coalesce(%(name)s, t.name),
           active = coalesce(%(active)s, t.active),
           updated_at = now()
    FROM (SELECT id, name, active FROM tenants WHERE id = %(tenant_id)s FOR UPDATE) old
    WHERE t.id = old.id
    RETURNING t.id, t.org_id, old.name AS old_name, t.name AS new_name,
              old.active AS was_active, t.active AS is_active
),
cancelled AS (
    DELETE FROM aoer_queue q
    USING changed c
    WHERE q.tenant_id = c.id AND q.status = 'queued' AND NOT c.is_active
    RETURNING q.id
)
SELECT c.*, (SELECT count(*) FROM cancelled)::integer AS cancelled_jobs
FROM changed c;

-- name: tenant_exists
SELECT EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s) AS found;

-- name: tenant_name
SELECT name FROM tenants WHERE id = %(tenant_id)s;

-- name: tenant_names
-- The names of these tenants (those the caller sees), in one statement.
SELECT id, name FROM tenants WHERE id = ANY (%(ids)b::uuid[]);

-- name: tenant_named
-- The tenant holding this name, compared as the unique index tenants_name_key does.
SELECT id FROM tenants WHERE lower(btrim(name)) = lower(btrim(%(name)s));

-- name: unknown_tenants
-- The ids in the list that name no tenant (an import reports them before writing anything).
SELECT u.id
FROM unnest(%(ids)s::uuid[]) AS u(id)
WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.id)
ORDER BY u.id;

-- name: tenant_orgs
-- The organisation of each of these tenants that has one (live streams limited to one).
SELECT id AS tenant_id, org_id
FROM tenants
WHERE id = ANY (%(ids)b::uuid[]) AND org_id IS NOT NULL;

-- name: demo_tenants
-- Demo dealerships with ~90 days of realistic signals: each has its own level, trend,
-- weekly rhythm and noise; a few are sparse or stale so every risk level shows.
WITH dealers AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(names)s::text[], %(cities)s::text[])
             WITH ORDINALITY AS d (id, name, city, n)
),
created AS (
    INSERT INTO tenants (id, name, domain, city, region)
    SELECT id, name, lower(regexp_replace(name, '[^A-Za-z]+', '', 'g')) || '.example', city, 'Demo'
    FROM dealers
    -- an id or a name already registered: that dealership stays as it is
    ON CONFLICT DO NOTHING
    RETURNING id
),
days AS (
    SELECT d.id, d.n, g.day
    FROM dealers d
    CROSS JOIN generate_series(0, 89) AS g (day)
    -- sparse (every 6th dealer) and stale (every 5th) dealers leave gaps
    WHERE NOT (d.n %% 6 = 0 AND g.day %% 8 <> 0)
      AND NOT (d.n %% 5 = 0 AND g.day < 10)
      -- a demo name taken by another dealership left this id unregistered: no signals
      AND (d.id IN (SELECT id FROM created) OR EXISTS (SELECT 1 FROM tenants t WHERE t.id = d.id))
),
base AS (
    SELECT id, day,
           48 + (n * 37) %% 50 + 3 * sin(day / 7.0 * pi()) * ((n %% 3) + 1) / 3
             + (random() - 0.5) * (2 + (n %% 4) * 2) - day * ((n %% 7) - 3) / 30.0
             -- every 5th dealer (offset 2) swings wildly: high volatility
             + CASE WHEN n %% 5 = 2 THEN (random() - 0.5) * 70 ELSE 0 END AS level
    FROM days
)
INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv,
                             observed_rar)
SELECT id, current_date - day,
       round(least(100, greatest(0, level + 10 + (random() - 0.5) * 8))::numeric, 2),
       round(least(100, greatest(0, level + (random() - 0.5) * 6))::numeric, 2),
       round(least(100, greatest(0, level - 5 + (random() - 0.5) * 10))::numeric, 2),
       round(least(100, greatest(0, level + 5 + (random() - 0.5) * 12))::numeric, 2),
       round(least(100, greatest(0, level - 10 + (random() - 0.5) * 8))::numeric, 2),
       round(least(100, greatest(0, level + (random() - 0.5) * 4))::numeric, 2),
       round((level * 3 + random() * 40)::numeric, 2)
FROM base
ON CONFLICT (dealer_id, date) DO NOTHING;

-- name: demo_history
-- One recompute event per demo dealership and past day, scored as of that day, so a
-- newcomer's trend charts have history at once. Dealers that already have events are left
-- alone (idempotent; never rewrites real history).
INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)
SELECT sc.tenant_id, %(event_type)s,
       jsonb_build_object('aoerScore', sc.aoer_score,
                          'visibilityRisk', sc.visibility_risk,
                          'metrics', sc.metrics,
                          'backfilled', true),
       (current_date - d.day) + time '12:00'
FROM generate_series(1, 89) AS d (day)
CROSS JOIN LATERAL aoer_compute_scores_as_of(
    ARRAY(SELECT t.id FROM unnest(%(ids)s::uuid[]) AS t (id)
          WHERE NOT EXISTS (SELECT 1 FROM metrics_events e WHERE e.tenant_id = t.id)),
    current_date - d.day) sc;

-- name: move_tenant
-- Put a tenant into an organisation (NULL: out of every one); the tenant's old organisation
-- comes back too, for the audit trail. No row for an unknown tenant. The tenant's keys that
-- another organisation issued are revoked with the move (migration 0029): the organisation
-- it leaves keeps no key to it. The alert rules another organisation made for it (with that
-- organisation's endpoints and addresses) are deleted with it (migration 0034): they would
-- send the dealership's scores to an organisation that no longer holds it.
WITH moved AS (
    UPDATE tenants t SET org_id = %(org_id)s, updated_at = now()
    FROM (SELECT id, org_id FROM tenants WHERE id = %(tenant_id)s FOR UPDATE) old
    WHERE t.id = old.id
    RETURNING t.id, old.org_id AS old_org_id, t.org_id AS new_org_id
),
revoked AS (
    UPDATE api_keys k SET revoked_at = now()
    FROM moved m
    WHERE k.tenant_id = m.id AND k.revoked_at IS NULL
      AND k.issued_by_org IS DISTINCT FROM m.new_org_id AND k.issued_by_org IS NOT NULL
    RETURNING k.id
),
unwatched AS (
    DELETE FROM alert_rules r
    USING moved m
    WHERE r.scope = 'tenant' AND r.tenant_id = m.id
      AND r.owner_org IS DISTINCT FROM m.new_org_id AND r.owner_org IS NOT NULL
    RETURNING r.id, r.owner_org
)
SELECT m.id, m.old_org_id, m.new_org_id,
       ARRAY(SELECT r.id FROM revoked r ORDER BY r.id) AS revoked_key_ids,
       ARRAY(SELECT u.id FROM unwatched u ORDER BY u.id) AS deleted_rule_ids
FROM moved m;

-- name: tenants_named
-- Dealerships a person means by `text` in a filter box: those named exactly so (any case)
-- first, then those whose name contains it; at most `limit`. Row Level Security leaves a
-- scoped caller only its own. (A scan of tenants: an operator's page, not a hot path.)
SELECT id, name
FROM tenants
WHERE strpos(lower(name), lower(%(text)s)) > 0
ORDER BY lower(name) <> lower(%(text)s), name, id
LIMIT %(limit)s;
