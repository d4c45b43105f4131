-- name: api_enter_tenant_scope
-- Inside a transaction: act as the non-owner role with the caller's JWT claims, so Row Level
-- Security limits every following statement to the claimed tenant (both reset at its end).
SELECT set_config('role', 'aoer_tenant', true) AS role,
       set_config('request.jwt.claims', %(claims)s, true) AS claims;

-- name: api_summary
-- One tenant's summary; a row with a NULL score means the tenant exists but was never
-- computed, no row means no such tenant (or, under RLS, not the caller's).
SELECT t.id AS tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score) AS grade, aoer_risk_level(s.visibility_risk) AS risk_level
FROM tenants t
LEFT JOIN aoer_summary s ON s.tenant_id = t.id
WHERE t.id = %(tenant_id)s;

-- name: api_summaries
-- The summaries of many tenants at once (the SSE fan-out after a batch commits).
SELECT s.tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score) AS grade, aoer_risk_level(s.visibility_risk) AS risk_level
FROM aoer_summary s
WHERE s.tenant_id = ANY (%(tenant_ids)s::uuid[]);

-- name: api_queue_statuses
-- Job counts by status for each existing tenant among the given ones (`queued` reported as
-- pending); tenants that do not exist are left out.
SELECT t.id AS tenant_id,
       count(q.id) FILTER (WHERE q.status = 'queued')::integer     AS pending,
       count(q.id) FILTER (WHERE q.status = 'processing')::integer AS processing,
       count(q.id) FILTER (WHERE q.status = 'completed')::integer  AS completed,
       count(q.id) FILTER (WHERE q.status = 'failed')::integer     AS failed
FROM tenants t
LEFT JOIN aoer_queue q ON q.tenant_id = t.id
WHERE t.id = ANY (%(tenant_ids)s::uuid[])
GROUP BY t.id;

-- name: api_tenant_exists
SELECT EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s) AS found;

-- name: api_score_history
-- The tenant's recompute events over the last `days` days, oldest first (at most the newest
-- `limit`); events without a numeric score and risk are skipped.
SELECT created_at,
       (event_data ->> 'aoerScore')::numeric AS aoer_score,
       (event_data ->> 'visibilityRisk')::numeric AS visibility_risk,
       aoer_grade((event_data ->> 'aoerScore')::numeric) AS grade,
       aoer_risk_level((event_data ->> 'visibilityRisk')::numeric) AS risk_level,
       CASE WHEN jsonb_typeof(event_data -> 'metrics') = 'object' THEN event_data -> 'metrics'
            ELSE '{}'::jsonb END AS metrics
FROM (
    SELECT created_at, event_data
    FROM metrics_events
    WHERE tenant_id = %(tenant_id)s
      AND event_type = 'aoer_recompute'
      AND created_at >= now() - make_interval(days => %(days)s)
      AND jsonb_typeof(event_data -> 'aoerScore') = 'number'
      AND jsonb_typeof(event_data -> 'visibilityRisk') = 'number'
    ORDER BY created_at DESC
    LIMIT %(limit)s
) recent
ORDER BY created_at;

-- name: api_ping
SELECT 1 AS ok;

-- name: api_database_name
-- Names this deployment's keys in a Redis that other deployments may share.
SELECT current_database() AS name;
