-- name: alerts_without_jit
-- For the rest of this transaction (the batch's last statements): no JIT compilation. The
-- alert statement's plan is estimated far above jit_above_cost (its per-tenant lookups are
-- costed pessimistically), and compiling it took 1-2 s per batch (measured: Inlining 63 ms,
-- Optimization 567 ms, Emission 472 ms) for a statement that runs in milliseconds.
SELECT set_config('jit', 'off', true);

-- name: alerts_armed
-- Whether any alert rule is active: with none, a batch raises nothing, and the worker skips
-- the alert statement and the seven arrays it would send (~15 ms of a 1,000-job batch).
-- The same two partial rule indexes raise_alerts' own `armed` reads.
SELECT EXISTS (SELECT 1 FROM alert_rules WHERE active AND tenant_id IS NOT NULL)
       OR EXISTS (SELECT 1 FROM alert_rules WHERE active AND org_id IS NOT NULL);

-- name: raise_alerts
-- Raise the alerts of one processed batch, in the batch's own transaction: one statement for
-- every tenant recomputed and every job that ended `failed` (`job_ids`).
--
-- The recomputed tenants come with what complete_jobs returned: the summary each replaced
-- (`previous_*`: read under the row lock the recompute took, so two recomputes of one tenant
-- are serialised and the second compares with the first's result) and the new one. So
-- risk_level_up and grade_down need no lookup at all; score_drop reads its reference (the
-- score as of `days` ago) and stale_data the previous data age from the recompute events,
-- one index probe each, only for tenants that such a rule watches.
--
-- Cheap when nothing watches: `armed` is a one-time check of the two partial rule indexes,
-- and with no active rule nothing else is read. The dedup key is rule:tenant:<job id>
-- (job_failed: rule:tenant:failed:<job id>): a job completes once, and a batch retried after
-- a rollback raised nothing the first time; ON CONFLICT DO NOTHING makes a replay harmless.
-- Each inserted alert gets one pending delivery per active endpoint and e-mail address of
-- its rule, and NOTIFY wakes the delivery workers and the API's live feed.
WITH armed AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM alert_rules WHERE active AND tenant_id IS NOT NULL)
           OR EXISTS (SELECT 1 FROM alert_rules WHERE active AND org_id IS NOT NULL) AS yes
),
input AS MATERIALIZED (
    SELECT *
    FROM unnest(%(job_ids)b::uuid[], %(tenant_ids)b::uuid[], %(cur_scores)s::numeric[],
                %(cur_risks)s::numeric[], %(cur_days)s::integer[], %(prev_scores)s::numeric[],
                %(prev_risks)s::numeric[])
         AS i (job_id, tenant_id, cur_score, cur_risk, cur_days, prev_score, prev_risk)
    WHERE (SELECT yes FROM armed)
),
batch AS MATERIALIZED (
    SELECT i.*, t.name, t.org_id
    FROM input i
    -- One primary-key probe per recomputed tenant, never a scan of the fleet.
    CROSS JOIN LATERAL (SELECT name, org_id FROM tenants WHERE id = i.tenant_id OFFSET 0) t
    WHERE i.prev_score IS NOT NULL  -- a first recompute crosses nothing
),
watch AS MATERIALIZED (
    SELECT r.id AS rule_id, r.kind, r.params, b.*
    FROM batch b
    JOIN alert_rules r ON r.tenant_id = b.tenant_id AND r.active AND r.kind <> 'job_failed'
    UNION ALL
    SELECT r.id, r.kind, r.params, b.*
    FROM batch b
    JOIN alert_rules r ON r.org_id = b.org_id AND r.active AND r.kind <> 'job_failed'
),
judged AS (
    SELECT w.*, ref.score AS ref_score, stale.days AS prev_days,
           CASE w.kind
               -- A side without data (risk 1.00, score 0.00: DESIGN §3; "No data" on the
               -- pages) has no grade, risk level or score to compare: data that stops is
               -- stale_data's to report, not "Excellent → Poor" (migration 0031 likewise).
               WHEN 'risk_level_up' THEN
                   w.cur_risk > w.prev_risk AND w.cur_risk < 1 AND w.prev_risk < 1
                   AND aoer_risk_level(w.cur_risk) <> aoer_risk_level(w.prev_risk)
               WHEN 'grade_down' THEN
                   w.cur_score < w.prev_score AND w.cur_risk < 1 AND w.prev_risk < 1
                   AND aoer_grade(w.cur_score) <> aoer_grade(w.prev_score)
               WHEN 'score_drop' THEN
                   w.cur_risk < 1 AND w.prev_risk < 1 AND ref.had_data
                   AND ref.score - w.cur_score >= (w.params ->> 'points')::numeric
                   AND ref.score - w.prev_score < (w.params ->> 'points')::numeric
               WHEN 'stale_data' THEN
                   -- No data in the window at all counts as stale.
                   coalesce(w.cur_days, 2147483647) > (w.params ->> 'days')::integer
                   AND coalesce(stale.days, 2147483647) <= (w.params ->> 'days')::integer
               ELSE false
           END AS fires
    FROM watch w
    LEFT JOIN LATERAL (
        -- score_drop's reference: the score as of `days` ago (the last recompute then).
        SELECT (e.event_data ->> 'aoerScore')::numeric AS score,
               aoer_has_data(e.event_data -> 'metrics') AS had_data
        FROM metrics_events e
        WHERE w.kind = 'score_drop'
          AND e.tenant_id = w.tenant_id
          AND e.created_at <= now() - make_interval(days => (w.params ->> 'days')::integer)
          AND e.event_type = %(event_type)s
        ORDER BY e.created_at DESC
        LIMIT 1
    ) ref ON true
    LEFT JOIN LATERAL (
        -- stale_data: the data's age at the previous recompute (events before this one).
        SELECT (e.event_data -> 'metrics' ->> 'daysSinceLastData')::integer AS days
        FROM metrics_events e
        WHERE w.kind = 'stale_data'
          AND e.tenant_id = w.tenant_id
          AND e.created_at < now()
          AND e.event_type = %(event_type)s
        ORDER BY e.created_at DESC
        LIMIT 1
    ) stale ON true
),
failed AS MATERIALIZED (
    SELECT q.id AS job_id, q.tenant_id, t.name AS tenant_name, t.org_id, q.error_message,
           q.retry_count, q.completed_at
    FROM aoer_queue q
    JOIN tenants t ON t.id = q.tenant_id
    WHERE (SELECT yes FROM armed)
      AND q.id = ANY (%(failed_job_ids)b::uuid[])
      AND q.status = 'failed'
      -- Attempts spent: not a job closed because the tenant's waiting job carries the retry.
      AND q.retry_count >= q.max_retries
),
failed_watch AS (
    SELECT r.id AS rule_id, f.*
    FROM failed f
    JOIN alert_rules r ON r.tenant_id = f.tenant_id AND r.active AND r.kind = 'job_failed'
    UNION ALL
    SELECT r.id, f.*
    FROM failed f
    JOIN alert_rules r ON r.org_id = f.org_id AND r.active AND r.kind = 'job_failed'
),
fired AS (
    SELECT gen_random_uuid() AS id, j.rule_id, j.tenant_id, j.kind,
           j.rule_id || ':' || j.tenant_id || ':' || j.job_id AS dedup_key,
           j.name AS tenant_name, j.params,
           jsonb_build_object('aoerScore', j.prev_score, 'visibilityRisk', j.prev_risk,
                              'grade', CASE WHEN j.prev_risk < 1 THEN aoer_grade(j.prev_score)
                                            ELSE 'No data' END,
                              'riskLevel', CASE WHEN j.prev_risk < 1
                                                THEN aoer_risk_level(j.prev_risk)
                                                ELSE 'No data' END)
               || CASE WHEN j.kind = 'stale_data'
                       THEN jsonb_build_object('daysSinceLastData', j.prev_days)
                       ELSE '{}'::jsonb END AS previous,
           jsonb_build_object('aoerScore', j.cur_score, 'visibilityRisk', j.cur_risk,
                              'grade', CASE WHEN j.cur_risk < 1 THEN aoer_grade(j.cur_score)
                                            ELSE 'No data' END,
                              'riskLevel', CASE WHEN j.cur_risk < 1
                                                THEN aoer_risk_level(j.cur_risk)
                                                ELSE 'No data' END,
                              'daysSinceLastData', j.cur_days) AS current,
           CASE WHEN j.kind = 'score_drop'
                THEN jsonb_build_object('reference', jsonb_build_object(
                         'aoerScore', j.ref_score, 'days', (j.params ->> 'days')::integer),
                         'drop', j.ref_score - j.cur_score)
                ELSE '{}'::jsonb END AS extra
    FROM judged j
    WHERE j.fires
    UNION ALL
    -- Keyed by the failure, not only the job: a failed job retried from the console keeps
    -- its id, and its next final failure is an alert of its own.
    SELECT gen_random_uuid(), fw.rule_id, fw.tenant_id, 'job_failed',
           fw.rule_id || ':' || fw.tenant_id || ':failed:' || fw.job_id || ':'
               || (extract(epoch FROM fw.completed_at) * 1000000)::bigint,
           fw.tenant_name, '{}'::jsonb,
           NULL,
           (SELECT jsonb_build_object('aoerScore', s.aoer_score,
                                      'visibilityRisk', s.visibility_risk,
                                      'grade', aoer_grade(s.aoer_score),
                                      'riskLevel', aoer_risk_level(s.visibility_risk))
            FROM aoer_summary s WHERE s.tenant_id = fw.tenant_id),
           jsonb_build_object('job', jsonb_build_object('id', fw.job_id,
                                                         'error', fw.error_message,
                                                         'attempts', fw.retry_count))
    FROM failed_watch fw
),
inserted AS (
    INSERT INTO alerts (id, rule_id, tenant_id, kind, dedup_key, data)
    SELECT f.id, f.rule_id, f.tenant_id, f.kind, f.dedup_key,
           jsonb_build_object('alertId', f.id, 'ruleId', f.rule_id, 'tenantId', f.tenant_id,
                              'tenantName', f.tenant_name, 'kind', f.kind,
                              'params', f.params, 'previous', f.previous,
                              'current', f.current) || f.extra
    FROM fired f
    ORDER BY f.dedup_key  -- one lock order for concurrent batches
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, rule_id, tenant_id
),
deliveries AS (
    INSERT INTO alert_deliveries (alert_id, tenant_id, endpoint_id, email)
    SELECT i.id, i.tenant_id, e.id, NULL
    FROM inserted i
    JOIN alert_rules r ON r.id = i.rule_id
    JOIN alert_endpoints e ON e.id = ANY (r.endpoint_ids) AND e.active
    UNION ALL
    SELECT i.id, i.tenant_id, NULL, m.email
    FROM inserted i
    JOIN alert_rules r ON r.id = i.rule_id
    CROSS JOIN LATERAL unnest(r.emails) AS m (email)
    RETURNING 1
),
notified AS (
    -- Alert ids in payloads under NOTIFY's 8000-byte limit.
    SELECT pg_notify(%(channel)s, string_agg(id::text, ','))
    FROM (SELECT id, (row_number() OVER () - 1) / 150 AS chunk FROM inserted) chunks
    GROUP BY chunk
)
SELECT (SELECT count(*) FROM inserted)::integer AS alerts,
       (SELECT count(*) FROM deliveries)::integer AS deliveries,
       (SELECT count(*) FROM notified)::integer AS notifications;

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
       e.url, e.secret, a.kind, a.data, a.created_at AS alert_created_at
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
-- Before an endpoint is removed: its pending deliveries end `failed`, rules stop naming it.
WITH cancelled AS (
    UPDATE alert_deliveries
       SET status = 'failed', last_error = 'endpoint deleted', locked_by = NULL
     WHERE endpoint_id = %(id)s AND status = 'pending'
    RETURNING 1
),
unlinked AS (
    UPDATE alert_rules
       SET endpoint_ids = array_remove(endpoint_ids, %(id)s::uuid)
     WHERE %(id)s::uuid = ANY (endpoint_ids)
    RETURNING 1
)
SELECT (SELECT count(*) FROM cancelled)::integer + 0 * (SELECT count(*) FROM unlinked)::integer;

-- name: delete_endpoint
DELETE FROM alert_endpoints WHERE id = %(id)s
RETURNING id, org_id, url;

-- name: create_rule
INSERT INTO alert_rules (scope, org_id, tenant_id, kind, params, endpoint_ids, emails,
                         created_by)
VALUES (%(scope)s, %(org_id)s, %(tenant_id)s, %(kind)s, %(params)s, %(endpoint_ids)s,
        %(emails)s, %(created_by)s)
RETURNING id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
          created_by;

-- name: list_rules
-- Visible rules, optionally of one organisation or tenant, newest first.
SELECT id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
       created_by
FROM alert_rules
WHERE (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s::uuid)
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
ORDER BY created_at DESC, id;

-- name: delete_rule
-- Alerts it raised stay (their rule_id becomes NULL); their pending deliveries still go out.
DELETE FROM alert_rules WHERE id = %(id)s
RETURNING id, scope, org_id, tenant_id, kind, params, endpoint_ids, emails, active, created_at,
          created_by;

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
  AND (%(org_id)s::uuid IS NULL
       OR a.tenant_id IN (SELECT t.id FROM tenants t WHERE t.org_id = %(org_id)s::uuid))
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
