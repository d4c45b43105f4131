-- A dealership without data (no signal in its 30-day window: stored as score 0.00, risk 1.00,
-- metrics {"error": ...}, DESIGN §3) has no score to compare: the pages and the API call it
-- "No data". Until now its 7- and 30-day changes and its last recompute's split read those
-- stored zeros as a score, so a dealership whose signals stopped showed "-80.00 this week",
-- its drop blamed on AEO, GEO and UGC (and one whose first data arrived, "+62.00"). Now each
-- of the three is NULL when either side has no data: the current summary, the recompute's
-- previous summary, or the one as of 7 / 30 days ago. (The alerts judge the same way:
-- db/sql/alerts.sql, raise_alerts.)
CREATE OR REPLACE FUNCTION aoer_summary_context(tenant uuid, org uuid, current_score numeric,
                                     current_metrics jsonb, event_kind text,
                                     min_peers integer)
RETURNS TABLE (change jsonb, change_7d numeric, change_30d numeric, weights jsonb,
               benchmark jsonb)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN aoer_has_data(current_metrics) AND last.had_data
                THEN nullif(last.change, 'null'::jsonb) END,
           CASE WHEN aoer_has_data(current_metrics) AND d7.had_data
                THEN current_score - d7.score END,
           CASE WHEN aoer_has_data(current_metrics) AND d30.had_data
                THEN current_score - d30.score END,
           (SELECT jsonb_build_object('version', w.version, 'seo', w.seo, 'aeo', w.aeo,
                                      'geo', w.geo, 'ugc', w.ugc, 'geolocal', w.geolocal,
                                      'intercept', w.intercept)
            FROM model_weights w
            WHERE w.version = current_metrics ->> 'modelVersion'),
           (SELECT jsonb_build_object('scope', CASE WHEN m.org_id IS NULL THEN 'fleet'
                                                    ELSE 'organisation' END,
                                      'tenants', m.tenants,
                                      'avgSEO', m.avg_seo, 'avgAEO', m.avg_aeo,
                                      'avgGEO', m.avg_geo, 'avgUGC', m.avg_ugc,
                                      'avgGeolocal', m.avg_geolocal,
                                      'volatility', m.volatility,
                                      'computedAt', m.computed_at)
            FROM aoer_component_medians m
            WHERE m.org_id IS NULL OR (m.org_id = org AND m.tenants >= min_peers)
            ORDER BY m.org_id NULLS LAST
            LIMIT 1)
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (
        SELECT e.event_data -> 'change' AS change,
               -- the score it replaced had data: "No data" is stored as risk 1.00 (§3)
               coalesce((e.event_data #>> '{previous,visibilityRisk}')::numeric < 1, false)
                   AS had_data
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
        ORDER BY e.created_at DESC
        LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT (e.event_data ->> 'aoerScore')::numeric AS score,
               aoer_has_data(e.event_data -> 'metrics') AS had_data
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
          AND e.created_at <= now() - interval '7 days'
          AND jsonb_typeof(e.event_data -> 'aoerScore') = 'number'
        ORDER BY e.created_at DESC
        LIMIT 1
    ) d7 ON true
    LEFT JOIN LATERAL (
        SELECT (e.event_data ->> 'aoerScore')::numeric AS score,
               aoer_has_data(e.event_data -> 'metrics') AS had_data
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
          AND e.created_at <= now() - interval '30 days'
          AND jsonb_typeof(e.event_data -> 'aoerScore') = 'number'
        ORDER BY e.created_at DESC
        LIMIT 1
    ) d30 ON true
$$;
