-- name: recompute_tenants
-- Recompute and store the given tenants' summaries outside the queue (tools, tests, the CLI).
SELECT tenant_id, aoer_score, visibility_risk, metrics
FROM aoer_store_scores(%(tenant_ids)s::uuid[]);

-- name: get_summary
SELECT tenant_id, aoer_score, visibility_risk, last_updated, metrics,
       aoer_grade(aoer_score) AS grade, aoer_risk_level(visibility_risk) AS risk_level
FROM aoer_summary
WHERE tenant_id = %(tenant_id)s;
