-- name: model_lock
-- Serialises training runs and rollbacks (scheduler, CLI, API) for the transaction.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: model_today
SELECT current_date AS today;

-- name: model_training_data
-- Every tenant-day in the window whose outcome is known, as one row of parallel arrays so
-- the trainer gets its matrix in one round trip. The rows are sorted once (date, tenant) in
-- the subquery and every aggregate consumes that one ordered pass, which keeps the arrays
-- aligned and the data checksum stable without a sort per column.
-- `tenant` is a dense per-run index of the dealer, for counting tenants on each side.
SELECT coalesce(array_agg(date >= %(holdout_from)s), '{}') AS holdout,
       coalesce(array_agg(tenant), '{}') AS tenant,
       coalesce(array_agg(seo), '{}') AS seo,
       coalesce(array_agg(aeo), '{}') AS aeo,
       coalesce(array_agg(geo), '{}') AS geo,
       coalesce(array_agg(ugc), '{}') AS ugc,
       coalesce(array_agg(geolocal), '{}') AS geolocal,
       coalesce(array_agg(observed_aiv), '{}') AS observed_aiv
FROM (
    SELECT s.date,
           dense_rank() OVER (ORDER BY s.dealer_id)::integer AS tenant,
           s.seo::float8 AS seo, s.aeo::float8 AS aeo, s.geo::float8 AS geo,
           s.ugc::float8 AS ugc, s.geolocal::float8 AS geolocal,
           s.observed_aiv::float8 AS observed_aiv
    FROM aiv_raw_signals s
    WHERE s.date BETWEEN %(train_from)s AND %(holdout_to)s
      AND s.observed_aiv IS NOT NULL
    ORDER BY s.date, s.dealer_id
) tenant_days;

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
   SET status = 'retired', retired_at = now()
 WHERE status = 'champion'
RETURNING version;

-- name: model_crown
-- Step two: `version` becomes the champion. A promotion records the champion it replaced
-- (what a rollback restores); a rollback keeps the restored model's own history, so a
-- second rollback goes one step further back.
UPDATE model_weights
   SET status = 'champion',
       promoted_at = now(),
       retired_at = NULL,
       previous_version = CASE WHEN %(promotion)s THEN %(previous_version)s
                               ELSE previous_version END
 WHERE version = %(version)s
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
