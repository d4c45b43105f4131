-- name: recompute_tenants
-- Recompute and store the given tenants' summaries outside the queue (tools and tests).
SELECT tenant_id, aoer_score, visibility_risk, metrics, previous, change
FROM aoer_store_scores(%(tenant_ids)s::uuid[]);

-- name: summary
-- One tenant's summary; a row with a NULL score means the tenant exists but was never
-- computed, no row means no such tenant (or, under RLS, not the caller's).
SELECT t.id AS tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score) AS grade, aoer_risk_level(s.visibility_risk) AS risk_level
FROM tenants t
LEFT JOIN aoer_summary s ON s.tenant_id = t.id
WHERE t.id = %(tenant_id)s;

-- name: summaries
-- The summaries of many tenants at once (the SSE fan-out after a batch commits, tools).
SELECT s.tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score) AS grade, aoer_risk_level(s.visibility_risk) AS risk_level
FROM aoer_summary s
WHERE s.tenant_id = ANY (%(tenant_ids)s::uuid[]);

-- name: score_history
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
      AND event_type = %(event_type)s
      AND created_at >= now() - make_interval(days => %(days)s)
      AND jsonb_typeof(event_data -> 'aoerScore') = 'number'
      AND jsonb_typeof(event_data -> 'visibilityRisk') = 'number'
    ORDER BY created_at DESC
    LIMIT %(limit)s
) recent
ORDER BY created_at;

-- name: recent_events
-- The dealership's latest recomputes, newest first.
SELECT created_at,
       (event_data ->> 'aoerScore')::numeric AS aoer_score,
       (event_data ->> 'visibilityRisk')::numeric AS visibility_risk,
       event_data ->> 'priority' AS priority
FROM metrics_events
WHERE tenant_id = %(tenant_id)s AND event_type = %(event_type)s
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: delete_old_events
DELETE FROM metrics_events
WHERE id IN (SELECT id FROM metrics_events
             WHERE created_at < now() - make_interval(days => %(days)s)
             LIMIT %(limit)s);
