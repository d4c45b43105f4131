-- The self-improving loop (DESIGN §9): model versions, their audit trail, and the score
-- reading the champion's weights. v1 (DESIGN §3) is the first champion.

-- One row per model version. Weights are the normalised ones the score uses (they sum to
-- exactly 1, so the score stays on 0-100); the raw fit, the settings and the data checksum
-- of the run that produced a version are kept in `fit` so the run can be reproduced.
CREATE TABLE model_weights (
    version           text PRIMARY KEY CHECK (version ~ '^v[0-9]+$'),
    status            text NOT NULL CHECK (status IN ('champion', 'challenger', 'retired')),
    seo               numeric(7,6) NOT NULL CHECK (seo BETWEEN 0 AND 1),
    aeo               numeric(7,6) NOT NULL CHECK (aeo BETWEEN 0 AND 1),
    geo               numeric(7,6) NOT NULL CHECK (geo BETWEEN 0 AND 1),
    ugc               numeric(7,6) NOT NULL CHECK (ugc BETWEEN 0 AND 1),
    geolocal          numeric(7,6) NOT NULL CHECK (geolocal BETWEEN 0 AND 1),
    intercept         numeric(7,4) NOT NULL DEFAULT 0 CHECK (intercept BETWEEN -100 AND 100),
    as_of             date,
    train_from        date,
    train_to          date,
    holdout_from      date,
    holdout_to        date,
    train_rows        integer NOT NULL DEFAULT 0 CHECK (train_rows >= 0),
    holdout_rows      integer NOT NULL DEFAULT 0 CHECK (holdout_rows >= 0),
    tenants           integer NOT NULL DEFAULT 0 CHECK (tenants >= 0),
    holdout_rmse      double precision,
    holdout_mae       double precision,
    holdout_r2        double precision,
    fit               jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The champion this version replaced when it was promoted: what a rollback restores.
    previous_version  text REFERENCES model_weights (version),
    promoted_at       timestamptz,
    retired_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (seo + aeo + geo + ugc + geolocal = 1),
    CHECK (train_from <= train_to AND train_to < holdout_from AND holdout_from <= holdout_to)
);
-- At most one champion: promotion and rollback swap it inside one transaction.
CREATE UNIQUE INDEX model_weights_one_champion ON model_weights ((true))
    WHERE status = 'champion';

INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal, intercept,
                           promoted_at, fit)
VALUES ('v1', 'champion', 0, 0.40, 0.35, 0.25, 0, 0, now(),
        '{"source": "DESIGN §3: the v1 weights, set by hand"}'::jsonb);

-- One row per training run or rollback: what was compared, on which days, the result and why.
CREATE TABLE model_audit (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind                text NOT NULL CHECK (kind IN ('train', 'rollback')),
    trigger             text NOT NULL,
    tick                timestamptz,
    champion_version    text NOT NULL REFERENCES model_weights (version),
    challenger_version  text REFERENCES model_weights (version),
    result_version      text NOT NULL REFERENCES model_weights (version),
    decision            text NOT NULL
                        CHECK (decision IN ('promoted', 'rejected', 'skipped', 'rolled_back')),
    reason              text NOT NULL,
    as_of               date,
    train_from          date,
    train_to            date,
    holdout_from        date,
    holdout_to          date,
    train_rows          integer,
    holdout_rows        integer,
    train_tenants       integer,
    holdout_tenants     integer,
    champion_rmse       double precision,
    champion_mae        double precision,
    champion_r2         double precision,
    challenger_rmse     double precision,
    challenger_mae      double precision,
    challenger_r2       double precision,
    requeued            integer NOT NULL DEFAULT 0,
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
    details             jsonb NOT NULL DEFAULT '{}'::jsonb,
    duration_ms         double precision NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_audit_created_idx ON model_audit (created_at DESC);

-- The AOER score (DESIGN §3) with the champion's weights: same window, averages, volatility
-- penalty and risk as v1, so v1 as champion reproduces the v1 numbers exactly. The intercept
-- joins the weighted sum before the penalty; the result is clamped to 0-100 (v1 never needs
-- it). With no champion row (never expected) it falls back to the v1 constants, labelled v1.
-- It is computed as of any date (back-filled history, audits); `aoer_compute_scores` is the
-- as-of-today case.
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

