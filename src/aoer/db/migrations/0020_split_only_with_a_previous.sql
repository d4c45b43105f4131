-- The split of a score's change (0011) only where there is a change to split. The function
-- computed every part for every tenant of a batch and then dropped it for a tenant without a
-- previous summary (its first recompute: a new dealership, a fleet onboarded, the benchmark's
-- fresh start): about 8 ms of a 1,000-tenant batch's 45 (bench/README.md, "Fewer index
-- entries per job"). Side 0's terms and the parts are now evaluated only for tenants with a
-- previous summary; the results are the same, to the cent (the golden and change tests).
CREATE OR REPLACE FUNCTION aoer_store_scores(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb,
               previous jsonb, change jsonb)
LANGUAGE sql VOLATILE AS $$
    WITH cur AS MATERIALIZED (
        SELECT * FROM aoer_score_terms(tenant_ids, current_date)
    ),
    prev AS MATERIALIZED (
        SELECT s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
        FROM aoer_summary s
        WHERE s.tenant_id = ANY (tenant_ids)
        ORDER BY s.tenant_id
        FOR UPDATE
    ),
    stored AS (
        INSERT INTO aoer_summary AS s (tenant_id, aoer_score, visibility_risk, metrics,
                                       last_updated)
        SELECT c.tenant_id, c.aoer_score, c.visibility_risk, c.metrics, now()
        FROM cur c
        ON CONFLICT (tenant_id) DO UPDATE
           SET aoer_score = EXCLUDED.aoer_score,
               visibility_risk = EXCLUDED.visibility_risk,
               metrics = EXCLUDED.metrics,
               last_updated = EXCLUDED.last_updated,
               updated_at = now()
    )
    SELECT c.tenant_id, c.aoer_score, c.visibility_risk, c.metrics,
           CASE WHEN p.tenant_id IS NOT NULL
                THEN jsonb_build_object('aoerScore', p.aoer_score,
                                        'visibilityRisk', p.visibility_risk,
                                        'modelVersion', p.metrics -> 'modelVersion') END,
           CASE WHEN p.tenant_id IS NOT NULL
                THEN jsonb_strip_nulls(jsonb_build_object(
                    'seo', CASE WHEN x.w0_seo > 0 OR c.w_seo > 0 THEN x.p_seo END,
                    'aeo', CASE WHEN x.w0_aeo > 0 OR c.w_aeo > 0 THEN x.p_aeo END,
                    'geo', CASE WHEN x.w0_geo > 0 OR c.w_geo > 0 THEN x.p_geo END,
                    'ugc', CASE WHEN x.w0_ugc > 0 OR c.w_ugc > 0 THEN x.p_ugc END,
                    'geolocal', CASE WHEN x.w0_geolocal > 0 OR c.w_geolocal > 0
                                     THEN x.p_geolocal END,
                    'volatility', x.p_volatility,
                    'model', x.p_model,
                    'rounding', (c.aoer_score - p.aoer_score)
                                - (x.p_seo + x.p_aeo + x.p_geo + x.p_ugc + x.p_geolocal
                                   + x.p_volatility + x.p_model))) END
    FROM cur c
    LEFT JOIN prev p ON p.tenant_id = c.tenant_id
    -- Side 0's terms: its stored metrics and its model's weights (v1 when unknown). A side
    -- without data: c = 0, b = 0, m = 1 and the other side's weights. OFFSET 0 keeps each
    -- lateral step a subquery evaluated once per row: pulled up, every reference to o.m or
    -- x.p_aeo would repeat its whole expression (measured: -10 % CPU of the statement).
    -- Without a previous summary there is nothing to split: o and x are then no row.
    LEFT JOIN model_weights mw
           ON mw.version = coalesce(p.metrics ->> 'modelVersion', 'v1')
    CROSS JOIN LATERAL (
        SELECT p.metrics ? 'avgAEO' AS has_data
    ) h
    LEFT JOIN LATERAL (
        SELECT CASE WHEN h.has_data THEN coalesce(mw.seo, 0) ELSE c.w_seo END AS w_seo,
               CASE WHEN h.has_data THEN coalesce(mw.aeo, 0.40) ELSE c.w_aeo END AS w_aeo,
               CASE WHEN h.has_data THEN coalesce(mw.geo, 0.35) ELSE c.w_geo END AS w_geo,
               CASE WHEN h.has_data THEN coalesce(mw.ugc, 0.25) ELSE c.w_ugc END AS w_ugc,
               CASE WHEN h.has_data THEN coalesce(mw.geolocal, 0) ELSE c.w_geolocal END
                   AS w_geolocal,
               CASE WHEN h.has_data THEN coalesce(mw.intercept, 0) ELSE 0 END AS b,
               CASE WHEN h.has_data THEN coalesce((p.metrics -> 'avgSEO')::numeric, 0)
                    ELSE 0 END AS c_seo,
               CASE WHEN h.has_data THEN (p.metrics -> 'avgAEO')::numeric ELSE 0 END AS c_aeo,
               CASE WHEN h.has_data THEN (p.metrics -> 'avgGEO')::numeric ELSE 0 END AS c_geo,
               CASE WHEN h.has_data THEN (p.metrics -> 'avgUGC')::numeric ELSE 0 END AS c_ugc,
               CASE WHEN h.has_data THEN coalesce((p.metrics -> 'avgGeolocal')::numeric, 0)
                    ELSE 0 END AS c_geolocal,
               CASE WHEN h.has_data
                    THEN 1 - least((p.metrics -> 'volatility')::numeric / 20, 0.30)
                    ELSE 1 END AS m
        WHERE p.tenant_id IS NOT NULL  -- a first recompute has no change to split
        OFFSET 0
    ) o ON true
    -- Side 1's terms (a side without data: c = 0, L = 0, m = 1) and the parts. A component
    -- without old weight moves nothing (w0 = 0): its arithmetic is skipped, and the model
    -- part is written (L1 − b0 − Σ w0·c1)·m0, the same value with fewer operations.
    CROSS JOIN LATERAL (
        SELECT coalesce(c.avg_seo, 0) AS c_seo, coalesce(c.avg_aeo, 0) AS c_aeo,
               coalesce(c.avg_geo, 0) AS c_geo, coalesce(c.avg_ugc, 0) AS c_ugc,
               coalesce(c.avg_geolocal, 0) AS c_geolocal,
               coalesce(c.linear, 0) AS l,
               coalesce(c.multiplier, 1) AS m
    ) n
    LEFT JOIN LATERAL (
        SELECT o.w_seo AS w0_seo, o.w_aeo AS w0_aeo, o.w_geo AS w0_geo, o.w_ugc AS w0_ugc,
               o.w_geolocal AS w0_geolocal,
               CASE WHEN o.w_seo = 0 THEN 0
                    ELSE round(o.w_seo * (n.c_seo - o.c_seo) * o.m, 2) END AS p_seo,
               CASE WHEN o.w_aeo = 0 THEN 0
                    ELSE round(o.w_aeo * (n.c_aeo - o.c_aeo) * o.m, 2) END AS p_aeo,
               CASE WHEN o.w_geo = 0 THEN 0
                    ELSE round(o.w_geo * (n.c_geo - o.c_geo) * o.m, 2) END AS p_geo,
               CASE WHEN o.w_ugc = 0 THEN 0
                    ELSE round(o.w_ugc * (n.c_ugc - o.c_ugc) * o.m, 2) END AS p_ugc,
               CASE WHEN o.w_geolocal = 0 THEN 0
                    ELSE round(o.w_geolocal * (n.c_geolocal - o.c_geolocal) * o.m, 2)
               END AS p_geolocal,
               round((n.l - o.b
                      - CASE WHEN o.w_seo = 0 THEN 0 ELSE o.w_seo * n.c_seo END
                      - CASE WHEN o.w_aeo = 0 THEN 0 ELSE o.w_aeo * n.c_aeo END
                      - CASE WHEN o.w_geo = 0 THEN 0 ELSE o.w_geo * n.c_geo END
                      - CASE WHEN o.w_ugc = 0 THEN 0 ELSE o.w_ugc * n.c_ugc END
                      - CASE WHEN o.w_geolocal = 0 THEN 0 ELSE o.w_geolocal * n.c_geolocal END)
                     * o.m, 2) AS p_model,
               round(n.l * (n.m - o.m), 2) AS p_volatility
        WHERE p.tenant_id IS NOT NULL
        OFFSET 0
    ) x ON true
$$;
