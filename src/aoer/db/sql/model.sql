-- name: model_lock
-- Serialises training runs and rollbacks (scheduler, CLI, API) for the transaction.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: model_today
SELECT current_date AS today;

-- name: model_training_groups
-- The window's tenant-days with a known outcome, reduced where they are to at most 2 × 32
-- groups (side of the split × which components are present) of exact sums: a fit needs only
-- these (n, Σx, ΣxxT, Σxy, Σy, Σy²), so the trainer never holds the rows. Values are taken in
-- hundredths (numeric(5,2) × 100) as bigint, a missing component as 0: every product is an
-- integer below 10^8 and the sums (numeric) are exact, whatever the order rows are read in.
-- `fingerprint` sums a hash of every row, for the run's data checksum.
WITH days AS (
    SELECT s.date >= %(holdout_from)s AS holdout,
           s.seo IS NOT NULL AS has_seo, s.aeo IS NOT NULL AS has_aeo,
           s.geo IS NOT NULL AS has_geo, s.ugc IS NOT NULL AS has_ugc,
           s.geolocal IS NOT NULL AS has_geolocal,
           (coalesce(s.seo, 0) * 100)::bigint AS seo,
           (coalesce(s.aeo, 0) * 100)::bigint AS aeo,
           (coalesce(s.geo, 0) * 100)::bigint AS geo,
           (coalesce(s.ugc, 0) * 100)::bigint AS ugc,
           (coalesce(s.geolocal, 0) * 100)::bigint AS geolocal,
           (s.observed_aiv * 100)::bigint AS y,
           hash_record_extended((s.dealer_id, s.date, s.seo, s.aeo, s.geo, s.ugc, s.geolocal,
                                 s.observed_aiv), 0) AS fingerprint
    FROM aiv_raw_signals s
    WHERE s.date BETWEEN %(train_from)s AND %(holdout_to)s
      AND s.observed_aiv IS NOT NULL
)
SELECT holdout, has_seo, has_aeo, has_geo, has_ugc, has_geolocal,
       count(*) AS rows,
       sum(seo) AS seo, sum(aeo) AS aeo, sum(geo) AS geo, sum(ugc) AS ugc,
       sum(geolocal) AS geolocal,
       sum(seo * seo) AS seo_seo,
       sum(seo * aeo) AS seo_aeo,
       sum(seo * geo) AS seo_geo,
       sum(seo * ugc) AS seo_ugc,
       sum(seo * geolocal) AS seo_geolocal,
       sum(aeo * aeo) AS aeo_aeo,
       sum(aeo * geo) AS aeo_geo,
       sum(aeo * ugc) AS aeo_ugc,
       sum(aeo * geolocal) AS aeo_geolocal,
       sum(geo * geo) AS geo_geo,
       sum(geo * ugc) AS geo_ugc,
       sum(geo * geolocal) AS geo_geolocal,
       sum(ugc * ugc) AS ugc_ugc,
       sum(ugc * geolocal) AS ugc_geolocal,
       sum(geolocal * geolocal) AS geolocal_geolocal,
       sum(seo * y) AS seo_y, sum(aeo * y) AS aeo_y, sum(geo * y) AS geo_y,
       sum(ugc * y) AS ugc_y, sum(geolocal * y) AS geolocal_y,
       sum(y) AS y, sum(y * y) AS y_y,
       sum(fingerprint) AS fingerprint
FROM days
GROUP BY holdout, has_seo, has_aeo, has_geo, has_ugc, has_geolocal
ORDER BY holdout, has_seo, has_aeo, has_geo, has_ugc, has_geolocal;

-- name: model_training_tenants
-- Tenants with a tenant-day carrying the outcome and every one of the fit's columns
-- (`use_<component>`), on the training days and on the held-out days: a probe of the
-- (dealer_id, date) index per tenant that stops at its first such day.
SELECT (SELECT count(*) FROM tenants t
        WHERE EXISTS (SELECT 1 FROM aiv_raw_signals s
                      WHERE s.dealer_id = t.id
                        AND s.date BETWEEN %(train_from)s AND %(train_to)s
                        AND s.observed_aiv IS NOT NULL
                        AND (s.seo IS NOT NULL OR NOT %(use_seo)s)
                        AND (s.aeo IS NOT NULL OR NOT %(use_aeo)s)
                        AND (s.geo IS NOT NULL OR NOT %(use_geo)s)
                        AND (s.ugc IS NOT NULL OR NOT %(use_ugc)s)
                        AND (s.geolocal IS NOT NULL OR NOT %(use_geolocal)s))) AS train_tenants,
       (SELECT count(*) FROM tenants t
        WHERE EXISTS (SELECT 1 FROM aiv_raw_signals s
                      WHERE s.dealer_id = t.id
                        AND s.date BETWEEN %(holdout_from)s AND %(holdout_to)s
                        AND s.observed_aiv IS NOT NULL
                        AND (s.seo IS NOT NULL OR NOT %(use_seo)s)
                        AND (s.aeo IS NOT NULL OR NOT %(use_aeo)s)
                        AND (s.geo IS NOT NULL OR NOT %(use_geo)s)
                        AND (s.ugc IS NOT NULL OR NOT %(use_ugc)s)
                        AND (s.geolocal IS NOT NULL OR NOT %(use_geolocal)s))) AS holdout_tenants;

-- name: model_holdout_errors
-- A model's errors on the held-out tenant-days that carry the outcome and every one of the
-- fit's columns, summed exactly (numeric). The prediction is the score's: intercept +
-- Σ weight·component (a missing component as 0), clamped to 0-100.
WITH predicted AS (
    SELECT s.observed_aiv AS y,
           s.observed_aiv - least(greatest(
               %(intercept)s::numeric
               + coalesce(s.seo, 0) * %(seo)s::numeric
               + coalesce(s.aeo, 0) * %(aeo)s::numeric
               + coalesce(s.geo, 0) * %(geo)s::numeric
               + coalesce(s.ugc, 0) * %(ugc)s::numeric
               + coalesce(s.geolocal, 0) * %(geolocal)s::numeric, 0), 100) AS e
    FROM aiv_raw_signals s
    WHERE s.date BETWEEN %(holdout_from)s AND %(holdout_to)s
      AND s.observed_aiv IS NOT NULL
      AND (s.seo IS NOT NULL OR NOT %(use_seo)s)
      AND (s.aeo IS NOT NULL OR NOT %(use_aeo)s)
      AND (s.geo IS NOT NULL OR NOT %(use_geo)s)
      AND (s.ugc IS NOT NULL OR NOT %(use_ugc)s)
      AND (s.geolocal IS NOT NULL OR NOT %(use_geolocal)s)
)
SELECT count(*) AS rows,
       coalesce(sum(e * e), 0) AS squared,
       coalesce(sum(abs(e)), 0) AS absolute,
       coalesce(sum(y), 0) AS y,
       coalesce(sum(y * y), 0) AS yy
FROM predicted;

-- name: model_champion
-- The model the score uses now. Changes of champion are serialised by the model lock.
SELECT * FROM model_weights WHERE status = 'champion';

-- name: model_next_version
-- Versions are v1, v2, ... in creation order; callers hold the model lock.
SELECT 'v' || (coalesce(max(substring(version FROM 2)::integer), 0) + 1) AS version
FROM model_weights;

-- name: model_insert_version
INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal, intercept, as_of,
                           train_from, train_to, holdout_from, holdout_to, train_rows,
                           holdout_rows, tenants, holdout_rmse, holdout_mae, holdout_r2, fit,
                           retired_at)
VALUES (%(version)s, %(status)s, %(seo)s, %(aeo)s, %(geo)s, %(ugc)s, %(geolocal)s,
        %(intercept)s, %(as_of)s, %(train_from)s, %(train_to)s, %(holdout_from)s,
        %(holdout_to)s, %(train_rows)s, %(holdout_rows)s, %(tenants)s, %(holdout_rmse)s,
        %(holdout_mae)s, %(holdout_r2)s, %(fit)s::jsonb,
        CASE WHEN %(status)s = 'retired' THEN now() END);

-- name: model_retire_champion
-- Step one of a swap (promotion or rollback): the champion steps down. The partial unique
-- index lets the next statement crown another version in the same transaction.
UPDATE model_weights
   SET status = 'retired', retired_at = now(), pinned_at = NULL, pinned_by = NULL
 WHERE status = 'champion'
RETURNING version;

-- name: model_crown
-- Step two: `version` becomes the champion. A promotion records the champion it replaced
-- (what a rollback restores); a rollback keeps the restored model's own history, so a
-- second rollback goes one step further back. A rollback pins the model it restores
-- (`pinned_by`: who rolled back); a promotion never happens to a pinned champion.
UPDATE model_weights
   SET status = 'champion',
       promoted_at = now(),
       retired_at = NULL,
       previous_version = CASE WHEN %(promotion)s THEN %(previous_version)s
                               ELSE previous_version END,
       pinned_at = CASE WHEN %(pinned_by)s::text IS NULL THEN NULL ELSE now() END,
       pinned_by = %(pinned_by)s
 WHERE version = %(version)s
RETURNING version;

-- name: model_unpin
-- Training may promote over the champion again; callers hold the model lock.
UPDATE model_weights
   SET pinned_at = NULL, pinned_by = NULL
 WHERE status = 'champion' AND pinned_at IS NOT NULL
RETURNING version;

-- name: model_insert_audit
INSERT INTO model_audit (kind, trigger, tick, champion_version, challenger_version,
                         result_version, decision, reason, as_of, train_from, train_to,
                         holdout_from, holdout_to, train_rows, holdout_rows, train_tenants,
                         holdout_tenants, champion_rmse, champion_mae, champion_r2,
                         challenger_rmse, challenger_mae, challenger_r2, requeued, settings,
                         details, duration_ms)
VALUES (%(kind)s, %(trigger)s, %(tick)s, %(champion_version)s, %(challenger_version)s,
        %(result_version)s, %(decision)s, %(reason)s, %(as_of)s, %(train_from)s,
        %(train_to)s, %(holdout_from)s, %(holdout_to)s, %(train_rows)s, %(holdout_rows)s,
        %(train_tenants)s, %(holdout_tenants)s, %(champion_rmse)s, %(champion_mae)s,
        %(champion_r2)s, %(challenger_rmse)s, %(challenger_mae)s, %(challenger_r2)s,
        %(requeued)s, %(settings)s::jsonb, %(details)s::jsonb, %(duration_ms)s)
RETURNING id, created_at;

-- name: model_recent_audit
SELECT * FROM model_audit ORDER BY created_at DESC, id LIMIT %(limit)s;

-- name: model_insert_rollback_audit
INSERT INTO model_audit (kind, trigger, champion_version, result_version, decision, reason,
                         requeued, duration_ms)
VALUES ('rollback', %(trigger)s, %(champion_version)s, %(result_version)s, 'rolled_back',
        %(reason)s, %(requeued)s, %(duration_ms)s)
RETURNING id, created_at;

-- name: model_changes
-- Promotions and rollbacks over the last `days` days, oldest first: the markers on the score
-- trend (DESIGN §13). Only columns a tenant-scoped reader is granted (migration 0011).
SELECT id, created_at, decision, champion_version, result_version
FROM model_audit
WHERE decision IN ('promoted', 'rolled_back')
  AND created_at >= now() - make_interval(days => %(days)s)
ORDER BY created_at, id
LIMIT %(limit)s;
