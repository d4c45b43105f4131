-- Why the score moved (DESIGN §13): every recompute returns, with the new summary, the summary
-- it replaced (`previous`) and the score delta split into parts (`change`) that add up to the
-- delta to the cent. The score itself is unchanged: the same window, averages, penalty, clamp
-- and rounding as 0003 (the golden cases prove it).
--
-- The split. With components c_i (the rounded 30-day averages), weights w_i and intercept b of
-- the model that scored them, the linear part L = b + Σ w_i·c_i, the volatility multiplier
-- m = 1 − least(volatility/20, 0.30) and the raw score R = L·m (stored: S = round(clamp(R), 2));
-- 0 marks the previous summary, 1 this recompute. Walking from R0 to R1 one factor at a time:
--
--   component i = w0_i · (c1_i − c0_i) · m0        the component moved, old weights
--   model       = (b1 − b0 + Σ (w1_i − w0_i)·c1_i) · m0   the weights moved, new components
--   volatility  = L1 · (m1 − m0)                   the penalty moved
--
-- These add up to R1 − R0 exactly (numeric arithmetic). Each part is rounded to 2 decimals and
-- `rounding` = (S1 − S0) − Σ rounded parts takes what is left: the rounding of S0, S1 and the
-- parts, and the 0-100 clamp. So the parts always add up to the delta to the cent.
-- Only the previous summary's stored metrics are needed for side 0 (a component the old model
-- did not weigh needs no old average: its w0_i is 0), and the previous model's weights come from
-- model_weights by its recorded `modelVersion` (v1 when unrecorded or unknown).
-- A side without data (score 0.00, "No data available") counts as c = 0, b = 0, m = 1 with the
-- other side's weights, so appearing or vanishing data shows up in the component parts.
-- The first recompute of a tenant has `previous` and `change` null.
-- Components listed: those either model weighs (v1: aeo, geo, ugc).

-- Everything the score is made of, per tenant, as of a date: the stored answer (score, risk,
-- metrics) and the terms the split needs. The one definition of the score (DESIGN §3 with the
-- champion's weights, 0003); `aoer_compute_scores_as_of` and `aoer_store_scores` read it.
CREATE FUNCTION aoer_score_terms(tenant_ids uuid[], as_of date)
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb,
               has_data boolean, model_version text,
               w_seo numeric, w_aeo numeric, w_geo numeric, w_ugc numeric, w_geolocal numeric,
               intercept numeric,
               avg_seo numeric, avg_aeo numeric, avg_geo numeric, avg_ugc numeric,
               avg_geolocal numeric, multiplier numeric)
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
    terms AS (
        SELECT w.*,
               m.intercept + w.avg_seo * m.seo + w.avg_aeo * m.aeo + w.avg_geo * m.geo
                   + w.avg_ugc * m.ugc + w.avg_geolocal * m.geolocal AS linear,
               1 - least(w.volatility / 20, 0.30) AS multiplier,
               CASE WHEN w.n < 5 THEN 0.80
                    WHEN w.days_since > 7 THEN 0.60
                    WHEN w.volatility > 15 THEN 0.40
                    ELSE 0.20 END AS risk
        FROM w
        CROSS JOIN model m
    ),
    scored AS (
        SELECT t.*, round(greatest(0, least(100, t.linear * t.multiplier)), 2) AS score
        FROM terms t
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
                    'modelVersion', m.version)
                    -- components v1 ignores appear once a model weighs them
                    || CASE WHEN m.seo > 0 THEN jsonb_build_object('avgSEO', sc.avg_seo)
                            ELSE '{}'::jsonb END
                    || CASE WHEN m.geolocal > 0
                            THEN jsonb_build_object('avgGeolocal', sc.avg_geolocal)
                            ELSE '{}'::jsonb END
           END,
           sc.n IS NOT NULL,
           m.version,
           m.seo, m.aeo, m.geo, m.ugc, m.geolocal, m.intercept,
           sc.avg_seo, sc.avg_aeo, sc.avg_geo, sc.avg_ugc, sc.avg_geolocal, sc.multiplier
    FROM ids
    CROSS JOIN model m
    LEFT JOIN scored sc ON sc.tenant_id = ids.tenant_id
$$;

CREATE OR REPLACE FUNCTION aoer_compute_scores_as_of(tenant_ids uuid[], as_of date)
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.tenant_id, t.aoer_score, t.visibility_risk, t.metrics
    FROM aoer_score_terms(tenant_ids, as_of) t
$$;

-- The return type grows (previous, change), which CREATE OR REPLACE cannot do.
DROP FUNCTION aoer_store_scores(uuid[]);

-- Compute and upsert the summaries of a set of tenants; returns what was stored, the summary
-- it replaced and the split of the change (see the top of this file).
CREATE FUNCTION aoer_store_scores(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb,
               previous jsonb, change jsonb)
LANGUAGE sql VOLATILE AS $$
    WITH cur AS MATERIALIZED (
        SELECT * FROM aoer_score_terms(tenant_ids, current_date)
    ),
    -- The summaries being replaced, read before the upsert below in this same statement and
    -- locked (in id order), so a concurrent recompute of a tenant cannot slip in between.
    prev AS MATERIALIZED (
        SELECT s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
        FROM aoer_summary s
        WHERE s.tenant_id = ANY (tenant_ids)
        ORDER BY s.tenant_id
        FOR UPDATE
    ),
    -- Side 0's terms from its stored metrics and its model's weights.
    old AS (
        SELECT p.tenant_id, p.aoer_score, p.visibility_risk,
               p.metrics ->> 'modelVersion' AS model_version,
               p.metrics ? 'avgAEO' AS has_data,
               coalesce(mw.seo, 0) AS w_seo, coalesce(mw.aeo, 0.40) AS w_aeo,
               coalesce(mw.geo, 0.35) AS w_geo, coalesce(mw.ugc, 0.25) AS w_ugc,
               coalesce(mw.geolocal, 0) AS w_geolocal, coalesce(mw.intercept, 0) AS intercept,
               coalesce((p.metrics ->> 'avgSEO')::numeric, 0) AS avg_seo,
               coalesce((p.metrics ->> 'avgAEO')::numeric, 0) AS avg_aeo,
               coalesce((p.metrics ->> 'avgGEO')::numeric, 0) AS avg_geo,
               coalesce((p.metrics ->> 'avgUGC')::numeric, 0) AS avg_ugc,
               coalesce((p.metrics ->> 'avgGeolocal')::numeric, 0) AS avg_geolocal,
               1 - least(coalesce((p.metrics ->> 'volatility')::numeric, 0) / 20, 0.30)
                   AS multiplier
        FROM prev p
        LEFT JOIN model_weights mw ON mw.version = coalesce(p.metrics ->> 'modelVersion', 'v1')
    ),
    -- Both sides as terms; a side without data takes the other side's weights, b = 0, m = 1.
    sides AS (
        SELECT c.tenant_id, c.aoer_score, o.aoer_score AS old_score,
               c.w_seo AS w1_seo, c.w_aeo AS w1_aeo, c.w_geo AS w1_geo, c.w_ugc AS w1_ugc,
               c.w_geolocal AS w1_geolocal,
               CASE WHEN o.has_data THEN o.w_seo ELSE c.w_seo END AS w0_seo,
               CASE WHEN o.has_data THEN o.w_aeo ELSE c.w_aeo END AS w0_aeo,
               CASE WHEN o.has_data THEN o.w_geo ELSE c.w_geo END AS w0_geo,
               CASE WHEN o.has_data THEN o.w_ugc ELSE c.w_ugc END AS w0_ugc,
               CASE WHEN o.has_data THEN o.w_geolocal ELSE c.w_geolocal END AS w0_geolocal,
               CASE WHEN c.has_data THEN c.intercept ELSE 0 END AS b1,
               CASE WHEN o.has_data THEN o.intercept ELSE 0 END AS b0,
               coalesce(c.avg_seo, 0) AS c1_seo, coalesce(c.avg_aeo, 0) AS c1_aeo,
               coalesce(c.avg_geo, 0) AS c1_geo, coalesce(c.avg_ugc, 0) AS c1_ugc,
               coalesce(c.avg_geolocal, 0) AS c1_geolocal,
               CASE WHEN o.has_data THEN o.avg_seo ELSE 0 END AS c0_seo,
               CASE WHEN o.has_data THEN o.avg_aeo ELSE 0 END AS c0_aeo,
               CASE WHEN o.has_data THEN o.avg_geo ELSE 0 END AS c0_geo,
               CASE WHEN o.has_data THEN o.avg_ugc ELSE 0 END AS c0_ugc,
               CASE WHEN o.has_data THEN o.avg_geolocal ELSE 0 END AS c0_geolocal,
               coalesce(c.multiplier, 1) AS m1,
               CASE WHEN o.has_data THEN o.multiplier ELSE 1 END AS m0
        FROM cur c
        JOIN old o ON o.tenant_id = c.tenant_id
    ),
    parts AS (
        SELECT s.tenant_id, s.aoer_score, s.old_score,
               s.w0_seo > 0 OR s.w1_seo > 0 AS has_seo,
               s.w0_aeo > 0 OR s.w1_aeo > 0 AS has_aeo,
               s.w0_geo > 0 OR s.w1_geo > 0 AS has_geo,
               s.w0_ugc > 0 OR s.w1_ugc > 0 AS has_ugc,
               s.w0_geolocal > 0 OR s.w1_geolocal > 0 AS has_geolocal,
               round(s.w0_seo * (s.c1_seo - s.c0_seo) * s.m0, 2) AS p_seo,
               round(s.w0_aeo * (s.c1_aeo - s.c0_aeo) * s.m0, 2) AS p_aeo,
               round(s.w0_geo * (s.c1_geo - s.c0_geo) * s.m0, 2) AS p_geo,
               round(s.w0_ugc * (s.c1_ugc - s.c0_ugc) * s.m0, 2) AS p_ugc,
               round(s.w0_geolocal * (s.c1_geolocal - s.c0_geolocal) * s.m0, 2) AS p_geolocal,
               round((s.b1 - s.b0 + (s.w1_seo - s.w0_seo) * s.c1_seo
                      + (s.w1_aeo - s.w0_aeo) * s.c1_aeo + (s.w1_geo - s.w0_geo) * s.c1_geo
                      + (s.w1_ugc - s.w0_ugc) * s.c1_ugc
                      + (s.w1_geolocal - s.w0_geolocal) * s.c1_geolocal) * s.m0, 2) AS p_model,
               round((s.b1 + s.w1_seo * s.c1_seo + s.w1_aeo * s.c1_aeo + s.w1_geo * s.c1_geo
                      + s.w1_ugc * s.c1_ugc + s.w1_geolocal * s.c1_geolocal)
                     * (s.m1 - s.m0), 2) AS p_volatility
        FROM sides s
    ),
    change AS (
        SELECT p.tenant_id,
               jsonb_strip_nulls(jsonb_build_object(
                   'seo', CASE WHEN p.has_seo THEN p.p_seo END,
                   'aeo', CASE WHEN p.has_aeo THEN p.p_aeo END,
                   'geo', CASE WHEN p.has_geo THEN p.p_geo END,
                   'ugc', CASE WHEN p.has_ugc THEN p.p_ugc END,
                   'geolocal', CASE WHEN p.has_geolocal THEN p.p_geolocal END,
                   'volatility', p.p_volatility,
                   'model', p.p_model,
                   'rounding', (p.aoer_score - p.old_score)
                               - (p.p_seo + p.p_aeo + p.p_geo + p.p_ugc + p.p_geolocal
                                  + p.p_model + p.p_volatility))) AS change
        FROM parts p
    ),
    stored AS (
        INSERT INTO aoer_summary AS s (tenant_id, aoer_score, visibility_risk, metrics,
                                       last_updated)
        SELECT c.tenant_id, c.aoer_score, c.visibility_risk, c.metrics, now()
        FROM cur c
        -- `prev` must lock every row before this upsert touches one: a row this statement
        -- has already updated is invisible to its FOR UPDATE (it would vanish from
        -- `previous`). The uncorrelated subquery is an InitPlan, run once before the first
        -- insert; it reads `prev` to the end, and the later readers reuse what it stored.
        WHERE (SELECT count(*) FROM prev) >= 0
        ON CONFLICT (tenant_id) DO UPDATE
           SET aoer_score = EXCLUDED.aoer_score,
               visibility_risk = EXCLUDED.visibility_risk,
               metrics = EXCLUDED.metrics,
               last_updated = EXCLUDED.last_updated,
               updated_at = now()
        RETURNING s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
    )
    SELECT st.tenant_id, st.aoer_score, st.visibility_risk, st.metrics,
           CASE WHEN o.tenant_id IS NOT NULL
                THEN jsonb_build_object('aoerScore', o.aoer_score,
                                        'visibilityRisk', o.visibility_risk,
                                        'modelVersion', o.model_version) END,
           ch.change
    FROM stored st
    LEFT JOIN old o ON o.tenant_id = st.tenant_id
    LEFT JOIN change ch ON ch.tenant_id = st.tenant_id
$$;
