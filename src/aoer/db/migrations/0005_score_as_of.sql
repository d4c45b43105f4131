-- The score as of any date: the same set-based computation with the window ending on `as_of`
-- (back-filled history, audits). `aoer_compute_scores` is the as-of-today case of it.
CREATE FUNCTION aoer_compute_scores_as_of(tenant_ids uuid[], as_of date)
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH model AS (
        SELECT version, seo, aeo, geo, ugc, geolocal, intercept
        FROM (
            SELECT m.version, m.seo, m.aeo, m.geo, m.ugc, m.geolocal, m.intercept, 0 AS pick
            FROM model_weights m
            WHERE m.status = 'champion'
            UNION ALL
            SELECT 'v1', 0, 0.40, 0.35, 0.25, 0, 0, 1
        ) candidates
        ORDER BY pick
        LIMIT 1
    ),
    ids AS (
        SELECT DISTINCT unnest(tenant_ids) AS tenant_id
    ),
    w AS (
        SELECT s.dealer_id AS tenant_id,
               count(*)::integer                          AS n,
               round(coalesce(avg(s.seo), 0), 2)          AS avg_seo,
               round(avg(s.aeo), 2)                       AS avg_aeo,
               round(coalesce(avg(s.geo), 0), 2)          AS avg_geo,
               round(coalesce(avg(s.ugc), 0), 2)          AS avg_ugc,
               round(coalesce(avg(s.geolocal), 0), 2)     AS avg_geolocal,
               round(coalesce(stddev_samp(s.aeo), 0), 2)  AS volatility,
               (as_of - max(s.date))::integer             AS days_since
        FROM aiv_raw_signals s
        WHERE s.dealer_id = ANY (tenant_ids)
          AND s.date BETWEEN as_of - 30 AND as_of
          AND s.aeo IS NOT NULL
        GROUP BY s.dealer_id
    ),
    scored AS (
        SELECT w.*,
               m.version,
               m.seo AS w_seo,
               m.geolocal AS w_geolocal,
               round(greatest(0, least(100,
                     (m.intercept + w.avg_seo * m.seo + w.avg_aeo * m.aeo + w.avg_geo * m.geo
                      + w.avg_ugc * m.ugc + w.avg_geolocal * m.geolocal)
                     * (1 - least(w.volatility / 20, 0.30)))), 2) AS score,
               CASE WHEN w.n < 5 THEN 0.80
                    WHEN w.days_since > 7 THEN 0.60
                    WHEN w.volatility > 15 THEN 0.40
                    ELSE 0.20 END AS risk
        FROM w
        CROSS JOIN model m
    )
    SELECT ids.tenant_id,
           coalesce(sc.score, 0.00),
           coalesce(sc.risk, 1.00),
           CASE WHEN sc.n IS NULL THEN '{"error": "No data available"}'::jsonb
                ELSE jsonb_build_object(
                    'avgAEO', sc.avg_aeo,
                    'avgGEO', sc.avg_geo,
                    'avgUGC', sc.avg_ugc,
                    'volatility', sc.volatility,
                    'dataPoints', sc.n,
                    'daysSinceLastData', sc.days_since,
                    'grade', aoer_grade(sc.score),
                    'riskLevel', aoer_risk_level(sc.risk),
                    'modelVersion', sc.version)
                    -- components v1 ignores appear once a model weighs them
                    || CASE WHEN sc.w_seo > 0 THEN jsonb_build_object('avgSEO', sc.avg_seo)
                            ELSE '{}'::jsonb END
                    || CASE WHEN sc.w_geolocal > 0
                            THEN jsonb_build_object('avgGeolocal', sc.avg_geolocal)
                            ELSE '{}'::jsonb END
           END
    FROM ids
    LEFT JOIN scored sc ON sc.tenant_id = ids.tenant_id
$$;

CREATE OR REPLACE FUNCTION aoer_compute_scores(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM aoer_compute_scores_as_of(tenant_ids, current_date)
$$;
