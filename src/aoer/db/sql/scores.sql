-- name: recompute_tenants
-- Recompute and store the given tenants' summaries outside the queue (tools and tests).
SELECT tenant_id, aoer_score, visibility_risk, metrics, previous, change
FROM aoer_store_scores(%(tenant_ids)s::uuid[]);

-- name: summary
-- One tenant's summary; a row with a NULL score means the tenant exists but was never
-- computed, no row means no such tenant (or, under RLS, not the caller's).
-- With what the summary adds (DESIGN §13): aoer_summary_context, migration 0011.
SELECT t.id AS tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score, s.metrics) AS grade,
       aoer_risk_level(s.visibility_risk, s.metrics) AS risk_level,
       x.change, x.change_7d, x.change_30d, x.weights, x.benchmark, mv.last_move
FROM tenants t
LEFT JOIN aoer_summary s ON s.tenant_id = t.id
LEFT JOIN LATERAL aoer_summary_context(t.id, t.org_id, s.aoer_score, s.metrics,
                                       %(event_type)s, %(min_peers)s) x
       ON s.tenant_id IS NOT NULL
-- The last recompute that moved the score (migration 0037).
LEFT JOIN LATERAL aoer_last_move(t.id, %(event_type)s, %(move_days)s) mv
       ON s.tenant_id IS NOT NULL
WHERE t.id = %(tenant_id)s;

-- name: summaries
-- The summaries of many tenants at once (the SSE fan-out after a batch commits, tools).
SELECT s.tenant_id, s.aoer_score, s.visibility_risk, s.last_updated, s.metrics,
       aoer_grade(s.aoer_score, s.metrics) AS grade,
       aoer_risk_level(s.visibility_risk, s.metrics) AS risk_level,
       x.change, x.change_7d, x.change_30d, x.weights, x.benchmark, mv.last_move
FROM aoer_summary s
JOIN tenants t ON t.id = s.tenant_id
CROSS JOIN LATERAL aoer_summary_context(t.id, t.org_id, s.aoer_score, s.metrics,
                                        %(event_type)s, %(min_peers)s) x
LEFT JOIN LATERAL aoer_last_move(t.id, %(event_type)s, %(move_days)s) mv ON true
WHERE s.tenant_id = ANY (%(tenant_ids)s::uuid[]);

-- name: refresh_component_medians
-- Replace the medians snapshot the recommendations compare with; rows written.
SELECT aoer_refresh_component_medians() AS rows;

-- name: score_history
-- The tenant's recompute events over the last `days` days, oldest first (at most the newest
-- `limit`); events without a numeric score and risk are skipped. Bounded on both sides, so
-- only the monthly partitions of the window are read (0014_partitions.sql).
SELECT created_at,
       (event_data ->> 'aoerScore')::numeric AS aoer_score,
       (event_data ->> 'visibilityRisk')::numeric AS visibility_risk,
       aoer_grade((event_data ->> 'aoerScore')::numeric, event_data -> 'metrics') AS grade,
       aoer_risk_level((event_data ->> 'visibilityRisk')::numeric, event_data -> 'metrics')
           AS risk_level,
       CASE WHEN jsonb_typeof(event_data -> 'metrics') = 'object' THEN event_data -> 'metrics'
            ELSE '{}'::jsonb END AS metrics,
       event_data ->> 'priority' AS priority
FROM (
    SELECT created_at, event_data
    FROM metrics_events
    WHERE tenant_id = %(tenant_id)s
      AND event_type = %(event_type)s
      AND created_at >= now() - make_interval(days => %(days)s)
      AND created_at <= now()
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
       event_data ->> 'priority' AS priority,
       aoer_has_data(event_data -> 'metrics') AS has_data
FROM metrics_events
WHERE tenant_id = %(tenant_id)s AND event_type = %(event_type)s
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: recomputed_before
-- Whether the tenant was recomputed before `at`: a model change marks its trend only then (a
-- dealership first scored after a promotion never had the model it replaced). An index probe
-- a monthly partition, stopping at the first event found.
SELECT EXISTS (
    SELECT 1 FROM metrics_events
    WHERE tenant_id = %(tenant_id)s AND created_at < %(at)s AND event_type = %(event)s
) AS found;
