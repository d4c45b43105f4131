-- name: alerts_armed
-- Whether any alert rule is active: with none, a batch raises nothing, and the worker skips
-- the alert statement and the seven arrays it would send (~15 ms of a 1,000-job batch).
-- The same two partial rule indexes raise_alerts' own `armed` reads.
SELECT EXISTS (SELECT 1 FROM alert_rules WHERE active AND tenant_id IS NOT NULL)
       OR EXISTS (SELECT 1 FROM alert_rules WHERE active AND org_id IS NOT NULL);

-- name: raise_alerts
-- Raise the alerts of one processed batch, in the batch's own transaction: every tenant
-- recomputed (with what complete_jobs returned: the new summary and the one it replaced) and
-- every job that ended `failed`. One statement; what it does is aoer_raise_alerts (migration
-- 0032), which the old system's update_aoer_summary runs too.
SELECT *
FROM aoer_raise_alerts(%(job_ids)b::uuid[], %(tenant_ids)b::uuid[], %(cur_scores)s::numeric[],
                       %(cur_risks)s::numeric[], %(cur_days)s::integer[],
                       %(prev_scores)s::numeric[], %(prev_risks)s::numeric[],
                       %(failed_job_ids)b::uuid[]);

-- name: claim_deliveries
-- Take up to `limit` due deliveries under a lease: `next_attempt_at` moves past the lease, so
-- a worker that dies mid-send leaves the row due again once the lease runs out (at-least-once;
-- the receiver deduplicates on `webhook-id`, the delivery's id). SKIP LOCKED lets delivery
-- workers claim side by side; the attempt is counted at the claim, so a receiver that kills
-- the worker cannot be retried forever.
WITH due AS (
    SELECT id
    FROM alert_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE alert_deliveries d
       SET attempts = d.attempts + 1,
           locked_by = %(worker_id)s,
           next_attempt_at = now() + make_interval(secs => %(lease_s)s)
     WHERE d.id = ANY (ARRAY(SELECT id FROM due))
    RETURNING d.id, d.alert_id, d.endpoint_id, d.email, d.attempts, d.created_at
)
SELECT c.id, c.alert_id, c.endpoint_id, c.email, c.attempts, c.created_at,
       e.url, e.secret, e.org_id AS endpoint_org_id, a.kind, a.data,
       a.created_at AS alert_created_at
FROM claimed c
JOIN alerts a ON a.id = c.alert_id
LEFT JOIN alert_endpoints e ON e.id = c.endpoint_id;

-- name: settle_delivery
-- The outcome of one attempt by the worker that holds it: delivered, due again after
-- `delay_s`, or failed once the next attempt would fall past the retry window.
UPDATE alert_deliveries d
   SET status = CASE WHEN %(ok)s THEN 'delivered'
                     WHEN %(give_up)s
                          OR now() + make_interval(secs => %(delay_s)s)
                             > d.created_at + make_interval(secs => %(window_s)s)
                     THEN 'failed'
                     ELSE 'pending' END,
       delivered_at = CASE WHEN %(ok)s THEN now() END,
       next_attempt_at = CASE WHEN %(ok)s THEN d.next_attempt_at
                              ELSE now() + make_interval(secs => %(delay_s)s) END,
       last_status_code = %(status_code)s,
       last_error = %(error)s,
       locked_by = NULL
 WHERE d.id = %(id)s AND d.locked_by = %(worker_id)s AND d.status = 'pending'
RETURNING d.status;

-- name: next_delivery_due
-- When the earliest pending delivery is due (NULL when none is pending).
SELECT min(next_attempt_at) FROM alert_deliveries WHERE status = 'pending';

-- name: create_endpoint
INSERT INTO alert_endpoints (org_id, url, secret, created_by)
VALUES (%(org_id)s, %(url)s, %(secret)s, %(created_by)s)
RETURNING id, org_id, url, secret, active, created_at, created_by;

-- name: list_endpoints
-- Visible endpoints (a scoped caller's RLS leaves its organisation's), newest first.
SELECT id, org_id, url, secret, active, created_at, created_by
FROM alert_endpoints
WHERE %(org_id)s::uuid IS NULL OR org_id = %(org_id)s::uuid
ORDER BY created_at DESC, id;

-- name: get_endpoints
SELECT id, org_id, url, secret, active, created_at, created_by
FROM alert_endpoints
WHERE id = ANY (%(ids)s::uuid[]);

-- name: detach_endpoint
-- Before an endpoint is removed: its pending deliveries end `failed`, rules stop naming it;
-- how many deliveries. As the owner, for the endpoint's organisation (migration 0039).
SELECT aoer_detach_endpoint(%(id)s) AS cancelled;

-- name: delete_endpoint
DELETE FROM alert_endpoints WHERE id = %(id)s
RETURNING id, org_id, url;

-- name: create_rule
INSERT INTO alert_rules (scope, org_id, tenant_id, kind, params, endpoint_ids, emails,
                         created_by, owner_org)
VALUES (%(scope)s, %(org_id)s, %(tenant_id)s, %(kind)s, %(params)s, %(endpoint_ids)s,
        %(emails)s, %(created_by)s, %(owner_org)s)
RETURNING id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
          created_by, owner_org;

-- name: list_rules
-- Visible rules, optionally of one organisation, or watching one tenant (its own rules and
-- its organisation's), newest first.
SELECT id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
       created_by, owner_org
FROM alert_rules
WHERE (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s::uuid)
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid
       OR org_id = (SELECT t.org_id FROM tenants t WHERE t.id = %(tenant_id)s::uuid))
ORDER BY created_at DESC, id;

-- name: delete_rule
-- Alerts it raised stay (their rule_id becomes NULL); their pending deliveries still go out.
DELETE FROM alert_rules WHERE id = %(id)s
RETURNING id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
          created_by, owner_org;

-- name: list_alerts
-- The feed: visible alerts newest first, optionally of one tenant or organisation and since a
-- time, each with its deliveries' state; a page after `before` (the last row of the previous
-- one: a batch's alerts share their created_at, so the id breaks the tie).
SELECT a.id, a.rule_id, a.kind, a.tenant_id, a.created_at, a.data,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'id', d.id, 'endpointId', d.endpoint_id, 'email', d.email,
                            'status', d.status, 'attempts', d.attempts,
                            'lastStatusCode', d.last_status_code, 'lastError', d.last_error,
                            'nextAttemptAt', CASE WHEN d.status = 'pending'
                                                  THEN d.next_attempt_at END,
                            'deliveredAt', d.delivered_at)
                        ORDER BY d.created_at, d.id)
                 FROM alert_deliveries d WHERE d.alert_id = a.id), '[]'::jsonb) AS deliveries
FROM alerts a
WHERE (%(tenant_id)s::uuid IS NULL OR a.tenant_id = %(tenant_id)s::uuid)
  -- An organisation's alerts as its own claims read them (migration 0036): those its rules
  -- raised, and the unowned ones of its dealerships.
  AND (%(org_id)s::uuid IS NULL
       OR a.owner_org = %(org_id)s::uuid
       OR (a.owner_org IS NULL
           AND a.tenant_id IN (SELECT t.id FROM tenants t WHERE t.org_id = %(org_id)s::uuid)))
  AND (%(since)s::timestamptz IS NULL OR a.created_at >= %(since)s::timestamptz)
  AND (%(before_at)s::timestamptz IS NULL
       OR (a.created_at, a.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s;

-- name: alert_markers
-- One tenant's alerts over the last `days` days, the newest `limit`: the alert markers on its
-- score trend (DESIGN §13). No deliveries (the chart does not show them); walks
-- alerts_tenant_created_idx, and Row Level Security still decides what the caller sees.
SELECT id, kind, created_at, data
FROM alerts
WHERE tenant_id = %(tenant_id)s::uuid
  AND created_at >= now() - make_interval(days => %(days)s)
ORDER BY created_at DESC, id
LIMIT %(limit)s;

-- name: alerts_by_ids
-- These alerts (the live feed: ids from NOTIFY aoer_alerts), newest first, with deliveries.
SELECT a.id, a.rule_id, a.kind, a.tenant_id, a.created_at, a.data,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'id', d.id, 'endpointId', d.endpoint_id, 'email', d.email,
                            'status', d.status, 'attempts', d.attempts,
                            'lastStatusCode', d.last_status_code, 'lastError', d.last_error,
                            'nextAttemptAt', CASE WHEN d.status = 'pending'
                                                  THEN d.next_attempt_at END,
                            'deliveredAt', d.delivered_at)
                        ORDER BY d.created_at, d.id)
                 FROM alert_deliveries d WHERE d.alert_id = a.id), '[]'::jsonb) AS deliveries
FROM alerts a
WHERE a.id = ANY (%(ids)s::uuid[])
ORDER BY a.created_at DESC, a.id;

-- name: tenant_org_of
-- Whether a tenant exists (visible to the caller) and its organisation.
SELECT id, org_id FROM tenants WHERE id = %(tenant_id)s;

-- name: delete_old_alerts
-- Retention: one batch of old alerts (their deliveries go with them); never one whose
-- delivery is still pending.
DELETE FROM alerts
WHERE id IN (SELECT a.id FROM alerts a
             WHERE a.created_at < now() - make_interval(days => %(days)s)
               AND NOT EXISTS (SELECT 1 FROM alert_deliveries d
                               WHERE d.alert_id = a.id AND d.status = 'pending')
             LIMIT %(limit)s);

-- name: lock_rule_watch
-- Rules made for one tenant or organisation and kind, one at a time (until the transaction
-- ends): two identical rules posted at once would both pass the check for a repeat.
SELECT pg_advisory_xact_lock(16, hashtext(%(watch)s));
