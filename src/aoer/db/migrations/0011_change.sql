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
               avg_geolocal numeric, linear numeric, multiplier numeric)
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
           sc.avg_seo, sc.avg_aeo, sc.avg_geo, sc.avg_ugc, sc.avg_geolocal, sc.linear,
           sc.multiplier
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
--
-- Order matters: `prev` reads and locks the summaries being replaced (in id order, so a
-- concurrent recompute of a tenant waits, and then sees the summary it really replaces). The
-- upsert (`stored`) is referenced by nothing, so PostgreSQL runs it after the main query, when
-- every lock is held: a row this statement had already updated would be invisible to
-- `prev`'s FOR UPDATE. Its rows are the ones returned: it stores `cur` as it is.
CREATE FUNCTION aoer_store_scores(tenant_ids uuid[])
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
    LEFT JOIN model_weights mw
           ON mw.version = coalesce(p.metrics ->> 'modelVersion', 'v1')
    CROSS JOIN LATERAL (
        SELECT p.metrics ? 'avgAEO' AS has_data
    ) h
    CROSS JOIN LATERAL (
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
        OFFSET 0
    ) o
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
    CROSS JOIN LATERAL (
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
        OFFSET 0
    ) x
$$;

-- What the recommendations compare a dealership with (DESIGN §13): the medians of the
-- component averages and of volatility over the active dealerships with data, per
-- organisation and over the whole fleet (`org_id` NULL). A snapshot, refreshed by
-- `aoer_refresh_component_medians()` on a worker tick: a median over 100k summaries is too
-- dear for every summary read, and a tenant-scoped read could not see its peers' rows
-- anyway. Medians are `percentile_disc(0.5)`: an actual dealership's value, exact.
CREATE TABLE aoer_component_medians (
    org_id        uuid UNIQUE NULLS NOT DISTINCT REFERENCES organizations (id) ON DELETE CASCADE,
    tenants       integer NOT NULL CHECK (tenants > 0),
    avg_seo       numeric,
    avg_aeo       numeric,
    avg_geo       numeric,
    avg_ugc       numeric,
    avg_geolocal  numeric,
    volatility    numeric,
    computed_at   timestamptz NOT NULL DEFAULT now()
);

-- A tenant reads the fleet's row and its own organisation's; an organisation its own.
GRANT SELECT ON aoer_component_medians TO aoer_tenant;
ALTER TABLE aoer_component_medians ENABLE ROW LEVEL SECURITY;
CREATE POLICY aoer_component_medians_fleet_or_own_org ON aoer_component_medians
    USING (org_id IS NULL
           OR org_id = aoer_claimed_org_id()
           OR org_id = (SELECT t.org_id FROM tenants t WHERE t.id = aoer_claimed_tenant_id()));

-- The weights of the model a summary names, to compute a recommendation's expected gain
-- under Row Level Security (the model is the formula, not a tenant's data; the training
-- details stay hidden). The audit's decisions mark promotions and rollbacks on the trend chart.
GRANT SELECT (version, status, seo, aeo, geo, ugc, geolocal, intercept, promoted_at)
    ON model_weights TO aoer_tenant;
GRANT SELECT (id, kind, decision, champion_version, result_version, created_at)
    ON model_audit TO aoer_tenant;

-- Replace the snapshot (one transaction, so readers see the old rows or the new); returns the number of rows (fleet + organisations).
CREATE FUNCTION aoer_refresh_component_medians() RETURNS integer
LANGUAGE sql VOLATILE AS $$
    DELETE FROM aoer_component_medians;
    WITH fresh AS (
        SELECT CASE WHEN grouping(t.org_id) = 0 THEN t.org_id END AS org_id,
               count(*)::integer AS tenants,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY (s.metrics -> 'avgSEO')::numeric)
                   AS avg_seo,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY (s.metrics -> 'avgAEO')::numeric)
                   AS avg_aeo,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY (s.metrics -> 'avgGEO')::numeric)
                   AS avg_geo,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY (s.metrics -> 'avgUGC')::numeric)
                   AS avg_ugc,
               percentile_disc(0.5) WITHIN GROUP
                   (ORDER BY (s.metrics -> 'avgGeolocal')::numeric) AS avg_geolocal,
               percentile_disc(0.5) WITHIN GROUP
                   (ORDER BY (s.metrics -> 'volatility')::numeric) AS volatility
        FROM aoer_summary s
        JOIN tenants t ON t.id = s.tenant_id
        WHERE t.active AND s.metrics ? 'avgAEO'
        GROUP BY GROUPING SETS ((t.org_id), ())
        -- the group of dealerships without an organisation is not an organisation
        HAVING grouping(t.org_id) = 1 OR t.org_id IS NOT NULL
    ),
    added AS (
        INSERT INTO aoer_component_medians (org_id, tenants, avg_seo, avg_aeo, avg_geo,
                                            avg_ugc, avg_geolocal, volatility)
        SELECT f.org_id, f.tenants, f.avg_seo, f.avg_aeo, f.avg_geo, f.avg_ugc,
               f.avg_geolocal, f.volatility
        FROM fresh f
        WHERE f.tenants > 0  -- an empty fleet still has its () grouping set: no medians
        RETURNING 1
    )
    SELECT count(*)::integer FROM added
$$;

-- What GET /api/aoer/summary adds to a summary (DESIGN §13), read under the caller's Row Level
-- Security: the split of the last recompute, the score now minus the score as of 7 and 30 days
-- ago (the latest recompute event at or before then; NULL without one), the weights of the
-- model that scored it, and the medians it is compared with: its organisation's when the
-- organisation has at least `min_peers` dealerships with data, else the fleet's.
CREATE FUNCTION aoer_summary_context(tenant uuid, org uuid, current_score numeric,
                                     current_metrics jsonb, event_kind text,
                                     min_peers integer)
RETURNS TABLE (change jsonb, change_7d numeric, change_30d numeric, weights jsonb,
               benchmark jsonb)
LANGUAGE sql STABLE AS $$
    SELECT nullif(last.change, 'null'::jsonb),
           current_score - d7.score,
           current_score - d30.score,
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
        SELECT e.event_data -> 'change' AS change
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
        ORDER BY e.created_at DESC
        LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT (e.event_data ->> 'aoerScore')::numeric AS score
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
          AND e.created_at <= now() - interval '7 days'
          AND jsonb_typeof(e.event_data -> 'aoerScore') = 'number'
        ORDER BY e.created_at DESC
        LIMIT 1
    ) d7 ON true
    LEFT JOIN LATERAL (
        SELECT (e.event_data ->> 'aoerScore')::numeric AS score
        FROM metrics_events e
        WHERE e.tenant_id = tenant AND e.event_type = event_kind
          AND e.created_at <= now() - interval '30 days'
          AND jsonb_typeof(e.event_data -> 'aoerScore') = 'number'
        ORDER BY e.created_at DESC
        LIMIT 1
    ) d30 ON true
$$;
